"""LieGAN (Yang, Walters, Dehmamy, Yu; ICML 2023): generative adversarial symmetry discovery.

A generator holds c Lie algebra generators L_i; it samples coefficients w, builds
g = exp(sum_i w_i L_i) and transforms each pair (x, y) to (g.x, g.y). A discriminator tells
original from transformed pairs. The generator loss adds lambda * |mean cos(g.x, x)| (identity
avoidance) and eta * n * sum_{i < j} |cos(L_i, L_j)| (channel orthogonality, as published). Per batch: one
generator step, then one discriminator step (Adam, the paper's learning rates and betas).

How the work is done (same losses, same Adam settings, same batch size and epochs as the
published code; tests/test_perf_paths.py checks a step against a plain PyTorch one):

* S seeds at once: every parameter is stacked along a leading seed axis [S, ...] and each
  discriminator layer is one torch.baddbmm. A single run (`LieGAN.fit`) is S = 1,
  `LieGAN.fit_seeds` S > 1; both execute `train_liegan`. Seed k starts from the weights of a
  single run with seed k and draws its data order and coefficients from its own generator; the
  seeds' losses are summed before the gradients (d sum / d loss_k = 1). Bit-identical to single
  runs on CPU (torch 2.13: seeds 0, 1, 2 of two_body, 30 epochs, every generator entry and logged
  loss; with 1 or 2 threads), because of three details, since a kernel's rounding can depend on a
  tensor's shape: the one-output layer is applied as w @ h^T, Adam sees each seed's slice of a
  parameter as a tensor of its own, and a short last batch (per-seed rows not a multiple of 32)
  runs seed by seed. The ensemble's checkpoint is resumed only for the same list of seeds; a
  non-finite quantity stops the ensemble naming the seed. Image data (liegan_images) has no
  stacked path: its seeds train one after another, each in its own folder.
* one discriminator forward pass over [real; fake] serves both losses, and because the logit is
  one number per row, one back-propagation to the hidden units is shared by the discriminator's
  weight gradients and the generator's input gradient (`nets.StackedDiscriminator.gan_step`). Exact:
  the generator's Adam step never touches the discriminator, so the published discriminator
  step saw the same network and the same (detached) g.x.
* exp of 2 x 2 blocks in closed form with an analytic gradient (group.expm); other sizes use
  torch.linalg.matrix_exp.
* Adam runs as torch's fused kernel (`fused_adam`, the same update rule as the default).
* the numerical guards (g.x, generator loss, discriminator loss) cost one host sync per step;
  the message (quantity, epoch, step, generator norm) is assembled only when one fires, and
  both optimiser steps come after the check, so nothing non-finite is ever applied.
* data order and coefficients come from a per-seed CPU torch.Generator, drawn once per epoch and
  copied to the device at once: a seed's stream depends neither on the device nor on the other
  seeds of an ensemble. All other tensors are created on the device of the data.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..data.dataset import Dataset
from ..errors import UserError
from ..group import (
    LieGenerator,
    StackedGenerator,
    act_blocks,
    expm,
    resolve_init_scale,
    stacked_identity_regulariser,
    stacked_orthogonality_regulariser,
)
from ..nets import PairDiscriminator, StackedDiscriminator
from ..training import (
    EnsembleCheckpointer,
    Progress,
    check_finite_per_seed,
    data_tensors,
    distinct_seeds,
    keep_freed_memory,
    resolve_device,
    seed_everything,
    seed_views,
    set_seed_grads,
    vector_inputs_only,
)
from . import register
from .base import Budget, Discovery, RunContext, SearchSpace
from .liegan_images import train_liegan_images

DEFAULTS: dict[str, Any] = {
    "lr_generator": 1e-3,
    "lr_discriminator": 2e-4,
    "betas_generator": [0.5, 0.999],
    "betas_discriminator": [0.9, 0.999],
    "lambda_identity": 1.0,
    "eta_orthogonality": 0.1,
    "discriminator_hidden": [512, 512],
    "embedding_dim": 32,
    # std of the initial generator entries; 'auto': group.default_init_scale (the published conventions)
    "init_scale": "auto",
    "max_exponent_norm": None,
    # network telling original from transformed pairs: 'mlp' (vectors), 'conv' (images); 'auto' picks
    "discriminator": "auto",
    # identity avoidance: 'cosine' on the data, 'fourier' on images' Fourier magnitudes; 'auto' picks
    "identity_regulariser": "auto",
    # torch's fused Adam kernel: the same update rule as the default (foreach) Adam in one kernel
    # per parameter list; False selects the default implementation.
    "fused_adam": True,
}

CHECKPOINT_FORMAT = "liegan-stacked-v1"
LOG_KEYS = (
    "epoch", "loss_discriminator", "loss_generator_adversarial", "regulariser_identity",
    "regulariser_orthogonality", "generator_norm", "clip_events", "seconds",
)


def _stack_flat(t: torch.Tensor, s: int, b: int) -> torch.Tensor:
    return t.reshape(s * b, *t.shape[2:])


def train_liegan(
    data: Dataset,
    space: SearchSpace,
    budget: Budget,
    seeds: Sequence[int],
    params: dict[str, Any],
    ctx: RunContext,
) -> list[Discovery]:
    """Train LieGAN for each seed in `seeds` as one stacked model; one Discovery per seed, in order.

    Seed k's parameters are initialised exactly as a single run with seed k (torch.manual_seed(k),
    then LieGenerator, then PairDiscriminator), and its data order and coefficients come from its
    own generator (seeded as training.seed_everything does): nothing of seed k depends on the
    other seeds, as Adam and every loss term act per seed.
    """
    seeds = distinct_seeds(seeds)
    hp = {**DEFAULTS, **params}
    _check_vector_settings(hp)
    init_scale = resolve_init_scale(hp["init_scale"], space, "liegan")
    device = resolve_device(ctx.device)
    if device.type == "cpu":
        keep_freed_memory()
    S = len(seeds)
    gens: list[torch.Generator] = []
    lie_gens: list[LieGenerator] = []
    discs: list[PairDiscriminator] = []
    x_all, y_all, label = data_tensors(data, device)
    with torch.device("cpu"):  # initialise on the CPU: a seed starts from the same weights on every device
        for seed in seeds:
            gens.append(seed_everything(seed))
            lie_gens.append(LieGenerator(space, init_scale=init_scale))
            discs.append(PairDiscriminator(
                x_all.shape[1:], y_all.shape[1:], data.y_rep, hp["discriminator_hidden"], int(hp["embedding_dim"])
            ))
    generator = StackedGenerator(lie_gens).to(device)
    disc = StackedDiscriminator(discs).to(device)
    del lie_gens, discs
    g_params = list(generator.parameters())
    d_params = list(disc.parameters())
    # Adam sees each seed's slice of a stacked parameter as a tensor of its own (training.seed_views)
    g_views = seed_views(g_params, S)
    d_views = seed_views(d_params, S)
    fused = bool(hp["fused_adam"])
    opt_g = torch.optim.Adam(g_views, lr=hp["lr_generator"], betas=tuple(hp["betas_generator"]), fused=fused)
    opt_d = torch.optim.Adam(d_views, lr=hp["lr_discriminator"], betas=tuple(hp["betas_discriminator"]), fused=fused)
    lam, eta = float(hp["lambda_identity"]), float(hp["eta_orthogonality"])
    max_norm = hp["max_exponent_norm"]

    ckpt = EnsembleCheckpointer(
        ctx.workdir, ctx.checkpoint_every, CHECKPOINT_FORMAT, seeds,
        {"generator": generator, "discriminator": disc, "opt_generator": opt_g, "opt_discriminator": opt_d},
        gens, "liegan",
    )
    state = ckpt.restore()
    start_epoch = int(state["epoch"]) if state else 0
    logs: list[list[dict[str, Any]]] = [[] for _ in seeds]
    clip_events = torch.zeros(S, dtype=torch.long, device=device)
    if state is not None:
        logs = [[dict(zip(state["log_keys"], row)) for row in rows] for rows in state["log_rows"].tolist()]
        for log in logs:
            for row in log:
                row["epoch"], row["clip_events"] = int(row["epoch"]), int(row["clip_events"])
        clip_events = state["clip_events"].to(device)

    n = x_all.shape[0]
    bs = budget.batch_size
    m = space.matrix_size
    c = space.channels
    x_shape, y_shape = tuple(x_all.shape[1:]), tuple(y_all.shape[1:])
    y_moves = data.y_rep["type"] == "vector"
    nx = int(np.prod(x_shape))
    targets_d = StackedDiscriminator.gan_targets(S, n, bs, device)

    def gan_pass(sl: slice, x: torch.Tensor, y: torch.Tensor, raw: torch.Tensor, targets: torch.Tensor) -> tuple:
        """One batch for the seeds `sl`: both losses, g.x, and the gradients (generator: full stacked shape)."""
        s, b = x.shape[:2]
        gens_lie = generator.generators(sl)
        w = generator.coefficients(raw, sl)
        algebra = torch.bmm(w, gens_lie.reshape(s, c, m * m)).reshape(s * b, m, m)
        if max_norm is not None:
            norms = algebra.flatten(1).norm(dim=1).clamp_min(1e-12)
            over = norms > max_norm
            clip_events[sl] += over.reshape(s, b).sum(1)
            algebra = algebra * torch.where(over, max_norm / norms, torch.ones_like(norms))[:, None, None]
        g_el = expm(algebra)
        gx = act_blocks(g_el, _stack_flat(x, s, b), data.x_rep).reshape(s, b, *x_shape)
        gy = act_blocks(g_el, _stack_flat(y, s, b), data.y_rep).reshape(s, b, *y_shape)
        loss_d, adv, grads_d, d_fake = disc.gan_step(x, y, gx.detach(), gy.detach(), targets, sl)
        reg_id = stacked_identity_regulariser(gx, x)
        reg_orth = stacked_orthogonality_regulariser(gens_lie, space.n)
        reg = lam * reg_id + eta * reg_orth
        # generator gradient: d adv / d (g.x, g.y) from the discriminator, chained by autograd
        surrogate = reg.sum() + (gx * d_fake[..., :nx].reshape(gx.shape)).sum()
        if y_moves:
            surrogate = surrogate + (gy * d_fake[..., nx:].reshape(gy.shape)).sum()
        grads_g = torch.autograd.grad(surrogate, g_params)
        return adv + reg, loss_d, adv, reg_id, reg_orth, gx, grads_g, grads_d

    bar = Progress(budget.epochs - start_epoch, "liegan" if S == 1 else f"liegan x{S}", ctx.progress)
    for epoch in range(start_epoch, budget.epochs):
        t0 = time.perf_counter()
        # one epoch of randomness per seed, from that seed's own stream: order, then coefficients
        perms, raws = [], []
        for g in gens:
            perms.append(torch.randperm(n, generator=g, device="cpu"))
            raws.append(generator.draw(n, g))
        perm = torch.stack(perms).to(device)
        raw_all = torch.stack(raws).to(device)
        sums = torch.zeros(4, S, device=device)
        steps = 0
        for step, i0 in enumerate(range(0, n, bs)):
            idx = perm[:, i0 : i0 + bs]
            b = idx.shape[1]
            x, y, raw = x_all[idx], y_all[idx], raw_all[:, i0 : i0 + bs]
            if S == 1 or b % 32 == 0:
                loss_g, loss_d, adv, reg_id, reg_orth, gx, grads_g, grads_d = gan_pass(
                    slice(None), x, y, raw, targets_d[b])
            else:
                # a batch whose per-seed size is not a multiple of 32 (the last, short one) runs seed
                # by seed: vectorised kernels then see each seed's rows exactly as a single run does
                parts = [gan_pass(slice(k, k + 1), x[k : k + 1], y[k : k + 1], raw[k : k + 1], targets_d[b][:1])
                         for k in range(S)]
                loss_g, loss_d, adv, reg_id, reg_orth, gx = (torch.cat([p[i] for p in parts]) for i in range(6))
                grads_g = [torch.stack([p[6][i][k] for k, p in enumerate(parts)]) for i in range(len(g_params))]
                grads_d = [torch.cat([p[7][i] for p in parts]) for i in range(len(d_params))]
            probe = loss_g.detach().sum() + loss_d.detach().sum() + gx.detach().abs().amax()
            if not bool(torch.isfinite(probe)):
                check_finite_per_seed(
                    seeds, [("transformed data g.x", gx), ("generator loss", loss_g), ("discriminator loss", loss_d)],
                    generator.generators().detach().flatten(1).norm(dim=1).tolist(), epoch, step,
                )
            set_seed_grads(g_views, grads_g, S)
            set_seed_grads(d_views, grads_d, S)
            opt_g.step()
            opt_d.step()
            sums += torch.stack([loss_d.detach(), adv.detach(), reg_id.detach(), reg_orth.detach()])
            steps += 1
        means = (sums / steps).T.tolist()
        norms_now = generator.generators().detach().flatten(1).norm(dim=1).tolist()
        clips = clip_events.tolist()
        seconds = time.perf_counter() - t0
        for k in range(S):
            row = {
                "epoch": epoch + 1,
                "loss_discriminator": means[k][0],
                "loss_generator_adversarial": means[k][1],
                "regulariser_identity": means[k][2],
                "regulariser_orthogonality": means[k][3],
                "generator_norm": norms_now[k],
                "clip_events": clips[k],
                "seconds": seconds,
            }
            logs[k].append(row)
        bar.update(1, d=means[0][0], g=means[0][1], id=means[0][2])
        ckpt.save_if_due(epoch + 1, budget.epochs, {
            "log_keys": list(LOG_KEYS),
            "log_rows": torch.tensor([[[float(r[key]) for key in LOG_KEYS] for r in log] for log in logs],
                                     dtype=torch.float64),
            "clip_events": clip_events.cpu(),
        })
    bar.close()
    blocks_all = generator.generators().detach().cpu().double().numpy()
    out = []
    for k in range(S):
        blocks = blocks_all[k]
        out.append(Discovery(
            generators=space.effective(blocks),
            coefficient_distribution=generator.coefficient_distribution(k),
            log=logs[k],
            info={"clip_events": int(clip_events[k]), "blocks": blocks},
        ))
    return out


def _check_vector_settings(hp: dict[str, Any]) -> None:
    """Vector data trains with the MLP discriminator and the cosine regulariser; say so for anything else."""
    if hp["discriminator"] not in ("auto", "mlp"):
        raise UserError(f"methods.liegan.discriminator: vector data needs 'mlp' (or 'auto'), got {hp['discriminator']!r}")
    if hp["identity_regulariser"] not in ("auto", "cosine"):
        raise UserError(
            "methods.liegan.identity_regulariser: vector data needs 'cosine' (or 'auto'; 'fourier' is for images), "
            f"got {hp['identity_regulariser']!r}"
        )


@register("liegan")
class LieGAN:
    """The LieGAN method; hyperparameters and their defaults in DEFAULTS."""

    name = "liegan"

    def skip(self, data: Dataset, space: SearchSpace) -> str | None:
        if data.x_rep["type"] == "grid":  # images: liegan_images
            return None
        return vector_inputs_only(data, "LieGAN")

    def fit(
        self,
        data: Dataset,
        space: SearchSpace,
        budget: Budget,
        seed: int,
        params: dict[str, Any],
        ctx: RunContext,
    ) -> Discovery:
        if data.x_rep["type"] == "grid":
            return train_liegan_images(data, space, budget, seed, {**DEFAULTS, **params}, ctx)
        return train_liegan(data, space, budget, [seed], params, ctx)[0]

    def fit_seeds(
        self,
        data: Dataset,
        space: SearchSpace,
        budget: Budget,
        seeds: Sequence[int],
        params: dict[str, Any],
        ctx: RunContext,
    ) -> list[Discovery]:
        """All seeds as one batched ensemble (train_liegan); images one seed after another."""
        reason = self.skip(data, space)
        if reason:
            raise ValueError(f"LieGAN cannot run on this data: {reason}")
        if data.x_rep["type"] == "grid":  # each seed keeps its own checkpoint folder
            return [self.fit(data, space, budget, seed, params, _seed_context(ctx, seed)) for seed in seeds]
        return train_liegan(data, space, budget, seeds, params, ctx)


def _seed_context(ctx: RunContext, seed: int) -> RunContext:
    """ctx with workdir/seed<k> (so each seed keeps its own checkpoint), or ctx itself without a workdir."""
    if not ctx.workdir:
        return ctx
    workdir = Path(ctx.workdir) / f"seed{seed}"
    workdir.mkdir(parents=True, exist_ok=True)
    return replace(ctx, workdir=str(workdir))
