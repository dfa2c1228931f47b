"""LieGAN (Yang, Walters, Dehmamy, Yu; ICML 2023): generative adversarial symmetry discovery.

A generator holds c Lie algebra generators L_i; it samples coefficients w, builds
g = exp(sum_i w_i L_i) and transforms each pair (x, y) to (g.x, g.y). A discriminator tells
original from transformed pairs. The generator loss adds lambda * |mean cos(g.x, x)| (identity
avoidance) and eta * sum_{i != j} |cos(L_i, L_j)| (channel orthogonality). Per batch: one
generator step, then one discriminator step (Adam, the paper's learning rates and betas).

How the work is done (same losses, same Adam settings, same batch size and epochs as the
published code; tests/test_perf_paths.py checks a step against a plain PyTorch one):

* S seeds at once: every parameter is stacked along a leading seed axis [S, ...] and each
  discriminator layer is one torch.baddbmm. A single run (`LieGAN.fit`) is S = 1;
  `liegan_ensemble.fit_seeds` is S > 1; both execute `train_liegan`.
* one discriminator forward pass over [real; fake] serves both losses, and because the logit is
  one number per row, one back-propagation to the hidden units is shared by the discriminator's
  weight gradients and the generator's input gradient (`StackedDiscriminator.gan_step`). Exact:
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

import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.dataset import Dataset
from ..errors import UserError
from ..group import LieGenerator, act_blocks, expm
from ..nets import PairDiscriminator
from ..training import (
    Progress,
    check_finite,
    data_tensors,
    keep_freed_memory,
    load_checkpoint,
    resolve_device,
    save_checkpoint,
    seed_everything,
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
    "init_scale": 1.0,
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


class StackedGenerator(nn.Module):
    """S LieGenerators' blocks [S, c, m, m], mask and coefficient law, for an ensemble of seeds."""

    def __init__(self, generators: Sequence[LieGenerator]):
        super().__init__()
        first = generators[0]
        self.blocks = nn.Parameter(torch.stack([g.blocks.detach() for g in generators]))
        self.register_buffer("mask", first.mask.detach().clone())
        log_sigma = torch.stack([g.log_sigma.detach() for g in generators])
        if isinstance(first.log_sigma, nn.Parameter):
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)
        self.distribution, self.low, self.high = first.distribution, first.low, first.high

    def generators(self, seeds: slice = slice(None)) -> torch.Tensor:
        """Masked blocks [S, c, m, m] (of the seeds selected by `seeds`)."""
        return self.blocks[seeds] * self.mask

    def draw(self, rows: int, gen: torch.Generator) -> torch.Tensor:
        """One seed's raw coefficient draws [rows, c] on the CPU (scaled by `coefficients`)."""
        c = self.blocks.shape[1]
        if self.distribution == "normal":
            return torch.randn(rows, c, generator=gen, device="cpu")
        if self.distribution == "uniform":
            return self.low + (self.high - self.low) * torch.rand(rows, c, generator=gen, device="cpu")
        return torch.randint(int(self.low), int(self.high) + 1, (rows, c), generator=gen, device="cpu").float()

    def coefficients(self, raw: torch.Tensor, seeds: slice = slice(None)) -> torch.Tensor:
        """w [S, B, c] from raw draws [S, B, c] (a learnable sigma enters here, so it gets gradients)."""
        if self.distribution == "normal":
            return raw * self.log_sigma[seeds].exp().unsqueeze(1)
        return raw

    def coefficient_distribution(self, s: int) -> dict[str, Any]:
        out: dict[str, Any] = {"distribution": self.distribution}
        if self.distribution == "normal":
            out["sigma"] = self.log_sigma[s].exp().detach().cpu().tolist()
        else:
            out["low"], out["high"] = self.low, self.high
        return out


class StackedDiscriminator(nn.Module):
    """S PairDiscriminators as one module: weights [S, in, out], biases [S, 1, out], baddbmm per layer.

    Built from S initialised PairDiscriminators, so each seed starts from exactly the weights a
    single-seed run would; forward takes x [S, B, ...], y [S, B, ...] (labels [S, B]) -> logits [S, B].
    """

    def __init__(self, discs: Sequence[PairDiscriminator]):
        super().__init__()
        first = discs[0]
        self.label = first.label
        if self.label:
            self.embed = nn.Parameter(torch.stack([d.embed.weight.detach() for d in discs]))
        layers = list(first.net)
        linear_idx = [i for i, m in enumerate(layers) if isinstance(m, nn.Linear)]
        slopes = {float(m.negative_slope) for m in layers if isinstance(m, nn.LeakyReLU)}
        if len(slopes) > 1 or len(layers) != 2 * len(linear_idx) - 1:
            raise ValueError("StackedDiscriminator expects Linear layers with one LeakyReLU between each")
        self.slope = slopes.pop() if slopes else 0.0
        # A layer with one output unit is kept as [S, 1, in] and applied as w @ h^T: batched matrix
        # products with a single output column take a different (slower) kernel for S > 1 than for
        # S = 1, so a seed's numbers would depend on the ensemble size. Other layers: [S, in, out].
        self.row_layer = [first.net[i].out_features == 1 for i in linear_idx]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([d.net[i].weight.detach() if row else d.net[i].weight.detach().t() for d in discs])
                         .contiguous())
            for i, row in zip(linear_idx, self.row_layer)
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([d.net[i].bias.detach() for d in discs]).unsqueeze(1)) for i in linear_idx
        )

    def features(self, x: torch.Tensor, y: torch.Tensor, seeds: slice = slice(None)) -> torch.Tensor:
        """The network's input [S, B, in]: flattened x, then flattened y or y's embedding."""
        s, b = x.shape[:2]
        if self.label:
            embed = self.embed[seeds]
            yf = torch.gather(embed, 1, y.long().unsqueeze(-1).expand(s, b, embed.shape[-1]))
        else:
            yf = y.reshape(s, b, -1)
        return torch.cat([x.reshape(s, b, -1), yf], dim=2)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Logits [S, B] (differentiable; the training loop uses `gan_step`)."""
        h = self.features(x, y)
        last = len(self.weights) - 1
        for i, (w, bias, row) in enumerate(zip(self.weights, self.biases, self.row_layer)):
            h = torch.baddbmm(bias, w, h.transpose(1, 2)).transpose(1, 2) if row else torch.baddbmm(bias, h, w)
            if i < last:
                h = F.leaky_relu(h, self.slope)
        return h.squeeze(2)

    @torch.no_grad()
    def gan_step(
        self, x: torch.Tensor, y: torch.Tensor, gx: torch.Tensor, gy: torch.Tensor, targets: torch.Tensor,
        seeds: slice = slice(None),
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """Both LieGAN losses and their gradients from ONE forward pass over [real; fake] pairs.

        Returns (loss_d [S], adv [S], grads of loss_d.sum() for self.parameters() in order,
        d adv.sum() / d fake features [S, B, in]). loss_d is the mean BCE over real (target 1) and
        fake (target 0) pairs; adv the mean BCE of the fake pairs against target 1. `seeds` selects
        the seeds (x, y, gx, gy, targets hold those seeds only).

        Exact, not an approximation: the logit is a scalar per row, so the back-propagation from a
        row's logit to that row's hidden units is one vector per row, J_r = d o_r / d h_r, shared
        by both losses, which differ only in the scalar d loss / d o_r. J is computed once (the
        one large input-gradient product), then scaled per row for the discriminator's weight
        gradients and for the generator's input gradient: against autograd's generator step
        (forward + backward through the discriminator) plus discriminator step, this saves one
        forward pass over the fake half and one backward product through the hidden layer.
        """
        b = x.shape[1]
        weights = [w[seeds] for w in self.weights]
        biases = [bias[seeds] for bias in self.biases]
        inp = torch.cat([self.features(x, y, seeds), self.features(gx, gy, seeds)], 1)
        hs = [inp]
        h = inp
        for w, bias in zip(weights[:-1], biases[:-1]):
            h = F.leaky_relu(torch.baddbmm(bias, h, w), self.slope)
            hs.append(h)
        w_out, b_out = weights[-1], biases[-1]
        logits = torch.baddbmm(b_out, w_out, h.transpose(1, 2)).squeeze(1)  # [S, 2B]
        loss_d = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(1)
        fake = logits[:, b:]
        adv = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake), reduction="none").mean(1)
        prob = torch.sigmoid(logits)
        dlog_d = (prob - targets) / (2 * b)  # d loss_d / d logits  [S, 2B]
        dlog_g = (prob[:, b:] - 1) / b  # d adv / d fake logits    [S, B]

        n_layers = len(weights)
        grads_w: list[torch.Tensor] = [inp] * n_layers  # placeholders, all overwritten below
        grads_b: list[torch.Tensor] = [inp] * n_layers
        grads_w[-1] = torch.bmm(dlog_d.unsqueeze(1), hs[-1])  # [S, 1, H]
        grads_b[-1] = dlog_d.sum(1).reshape(-1, 1, 1)
        jac = w_out.expand(-1, inp.shape[1], -1)  # d logit / d h_last, per row
        d_input_fake = None
        row_d = dlog_d.unsqueeze(1)  # [S, 1, 2B]
        for i in range(n_layers - 2, -1, -1):
            jac = torch.ops.aten.leaky_relu_backward(jac, hs[i + 1], self.slope, True)  # d logit / d pre-activation
            # weight gradient h^T diag(dlog_d) jac: the row scaling goes on the layer's input (16 wide
            # for the first layer instead of 512), the bias gradient is dlog_d^T jac
            grads_w[i] = torch.bmm((hs[i] * dlog_d.unsqueeze(2)).transpose(1, 2), jac)
            grads_b[i] = torch.bmm(row_d, jac)
            if i > 0:
                jac = torch.bmm(jac, weights[i].transpose(1, 2))
            else:
                d_input_fake = torch.bmm(jac[:, b:], weights[0].transpose(1, 2)) * dlog_g.unsqueeze(2)
                if self.label:
                    d_input = torch.bmm(jac, weights[0].transpose(1, 2)) * dlog_d.unsqueeze(2)
        if d_input_fake is None:  # no hidden layer: the logit is linear in the input
            d_input_fake = w_out * dlog_g.unsqueeze(2)
            d_input = w_out * dlog_d.unsqueeze(2)
        grads: list[torch.Tensor] = []
        if self.label:
            embed = self.embed[seeds]
            labels = torch.cat([y, gy], 1).long().unsqueeze(-1).expand(-1, -1, embed.shape[-1])
            grads.append(torch.zeros_like(embed).scatter_add_(1, labels, d_input[..., -embed.shape[-1]:]))
        return loss_d, adv, grads + grads_w + grads_b, d_input_fake


def stacked_identity_regulariser(gx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """group.identity_regulariser per seed: |mean cos(g.x, x)| over vectors (last axis), -> [S]."""
    return F.cosine_similarity(gx, x, dim=-1).reshape(x.shape[0], -1).mean(1).abs()


def stacked_orthogonality_regulariser(generators: torch.Tensor) -> torch.Tensor:
    """group.orthogonality_regulariser per seed: sum_{i<j} |cos(L_i, L_j)| for [S, c, m, m] -> [S]."""
    s, c = generators.shape[:2]
    if c < 2:
        return generators.new_zeros(s)
    flat = F.normalize(generators.reshape(s, c, -1), dim=2)
    cos = torch.bmm(flat, flat.transpose(1, 2)).abs()
    return torch.triu(cos, diagonal=1).sum((1, 2))


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
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and non-empty, got {seeds}")
    hp = {**DEFAULTS, **params}
    _check_vector_settings(hp)
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
            lie_gens.append(LieGenerator(space, init_scale=float(hp["init_scale"])))
            discs.append(PairDiscriminator(
                x_all.shape[1:], y_all.shape[1:], data.y_rep, hp["discriminator_hidden"], int(hp["embedding_dim"])
            ))
    generator = StackedGenerator(lie_gens).to(device)
    disc = StackedDiscriminator(discs).to(device)
    del lie_gens, discs
    g_params = list(generator.parameters())
    d_params = list(disc.parameters())
    # Adam sees each seed's slice of a stacked parameter as a tensor of its own (a view sharing the
    # storage): its kernels treat short tensors and tails differently (vector vs scalar code, a
    # last-bit difference), so a seed's update would otherwise depend on the ensemble's size.
    g_views = _seed_views(g_params, S)
    d_views = _seed_views(d_params, S)
    fused = bool(hp["fused_adam"])
    opt_g = torch.optim.Adam(g_views, lr=hp["lr_generator"], betas=tuple(hp["betas_generator"]), fused=fused)
    opt_d = torch.optim.Adam(d_views, lr=hp["lr_discriminator"], betas=tuple(hp["betas_discriminator"]), fused=fused)
    lam, eta = float(hp["lambda_identity"]), float(hp["eta_orthogonality"])
    max_norm = hp["max_exponent_norm"]

    ckpt_path = Path(ctx.workdir) / "checkpoint.pt" if ctx.workdir else None
    logs: list[list[dict[str, Any]]] = [[] for _ in seeds]
    start_epoch = 0
    clip_events = torch.zeros(S, dtype=torch.long, device=device)
    state = load_checkpoint(ckpt_path) if ckpt_path else None
    if state is not None and (state.get("format") != CHECKPOINT_FORMAT or state.get("seeds") != seeds):
        print(f"liegan: ignoring {ckpt_path} (written by another version or for other seeds); starting afresh",
              file=sys.stderr)
        state = None
    if state is not None:
        generator.load_state_dict(state["generator"])
        disc.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_generator"])
        opt_d.load_state_dict(state["opt_discriminator"])
        for g, st in zip(gens, state["rng"]):
            g.set_state(st)
        torch.set_rng_state(state["torch_rng"])
        start_epoch = int(state["epoch"])
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
    ones = torch.ones(S, bs, device=device)
    targets_d = {bs: torch.cat([ones, torch.zeros_like(ones)], 1)}
    tail = n % bs
    if tail:
        targets_d[tail] = torch.cat([ones[:, :tail], torch.zeros_like(ones[:, :tail])], 1)

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
        reg_orth = stacked_orthogonality_regulariser(gens_lie)
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
                _raise_non_finite(seeds, generator.generators(), gx, loss_g, loss_d, epoch, step)
            _set_grads(g_views, grads_g, S)
            _set_grads(d_views, grads_d, S)
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
        last = epoch + 1 == budget.epochs
        if ckpt_path and (last or (epoch + 1) % ctx.checkpoint_every == 0):
            save_checkpoint(
                ckpt_path,
                {
                    "format": CHECKPOINT_FORMAT,
                    "seeds": seeds,
                    "generator": generator.state_dict(),
                    "discriminator": disc.state_dict(),
                    "opt_generator": opt_g.state_dict(),
                    "opt_discriminator": opt_d.state_dict(),
                    "rng": [g.get_state() for g in gens],
                    "torch_rng": torch.get_rng_state(),
                    "epoch": epoch + 1,
                    "log_keys": list(LOG_KEYS),
                    "log_rows": torch.tensor(
                        [[[float(r[key]) for key in LOG_KEYS] for r in log] for log in logs], dtype=torch.float64
                    ),
                    "clip_events": clip_events.cpu(),
                },
            )
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


def _seed_views(params: Sequence[torch.Tensor], seeds: int) -> list[torch.Tensor]:
    """Each stacked parameter [S, ...] as S leaf tensors [...] that share its storage (for the optimiser)."""
    return [p.detach()[k] for p in params for k in range(seeds)]


def _set_grads(views: Sequence[torch.Tensor], grads: Sequence[torch.Tensor], seeds: int) -> None:
    for i, grad in enumerate(grads):
        for k in range(seeds):
            views[i * seeds + k].grad = grad[k]


def _raise_non_finite(
    seeds: Sequence[int], gens_lie: torch.Tensor, gx: torch.Tensor, loss_g: torch.Tensor, loss_d: torch.Tensor,
    epoch: int, step: int,
) -> None:
    """Name the first non-finite quantity (g.x, generator loss, discriminator loss), per seed; raise."""
    for k, seed in enumerate(seeds):
        gnorm = float(gens_lie[k].detach().norm())
        tag = "" if len(seeds) == 1 else f" (seed {seed})"
        check_finite("transformed data g.x" + tag, gx[k].detach(), epoch, step, gnorm)
        check_finite("generator loss" + tag, loss_g[k].detach(), epoch, step, gnorm)
        check_finite("discriminator loss" + tag, loss_d[k].detach(), epoch, step, gnorm)
    # finite quantities whose sum overflowed: nothing is non-finite, training goes on


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
