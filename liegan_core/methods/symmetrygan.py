"""SymmetryGAN (Desai, Nachman, Thaler; PRD 105, 096031, 2022): a GAN whose generator is one linear map.

The generator is a single learned matrix M (m x m, the search space's block, mask applied) that
transforms every sample: x -> kron(I, M) x, and a vector y likewise. There is no exponential map
and no random coefficient, so what is learned is one group ELEMENT, not a Lie algebra. A
PairDiscriminator tells original (x, y) pairs from transformed ones; the generator is trained
with the non-saturating BCE loss (as LieGAN's), one generator step then one discriminator step
per batch. With c channels, c elements are trained independently, each from its own random
initialisation against its own discriminator (Desai et al. map out a symmetry group by repeating
the fit from different initialisations; the channels are those repetitions).

Initialisation: M0 = expm(A) with A_ij ~ N(0, init_scale^2 / m): a random element of the
identity component of GL(m) (det > 0), so reaching a rotation never requires crossing a
singular matrix, and no rotation is built in.

Defaults: the LieGAN paper's comparison ran SymmetryGAN through LieGAN's own training script
(published command `main_lagan.py --g_init 2*2_factorization --lamda 1 --num_epochs 100 --model
sgan`), so the learning rates and Adam betas are LieGAN's (generator 1e-3 with betas (0.5, 0.999),
discriminator 2e-4 with betas (0.9, 0.999)). `lambda_identity` adds LieGAN's identity avoidance
(group.identity_regulariser, |mean cos(M x, x)|); Desai et al.'s loss has none,
so the default is 0; two_body.yaml sets 1.0 as in that published command, which is what drives
the learned element towards a 90-degree rotation (cos(Rx, x) = cos(angle) vanishes there).

Report in generator format: for each channel the principal matrix logarithm
L = scipy.linalg.logm(M) is taken and its real part kept (exp(L) = M when L is real, so L is the
generator whose time-1 flow is the learned element; its direction is what the similarity metric
compares). When M has a real negative eigenvalue the principal logarithm is complex (no real
logarithm on the principal branch; e.g. a 180-degree rotation): the real part is still reported
and `logm_complex` = 1 flags it, with the count in `negative_real_eigenvalues`. A singular M has
no logarithm: that channel is reported as zeros and flagged in `logm_failed`. The blocks are
then embedded by `space.effective` (kron(I, L * mask)). info also holds the learned elements
(`element_blocks`), their distance from orthogonality and, for 2 x 2 blocks, the angle of the
nearest rotation.

How the work is done (`train_symmetrygan`; `SymmetryGAN.fit` is one seed, `fit_seeds` several,
one code path): the S seeds' elements are one parameter [S, c, m, m] and their S * c
discriminators (seed-major: member s * c + i is channel i of seed s) one
nets.StackedDiscriminator, each layer one torch.baddbmm over all members. Per batch one
discriminator pass over every member's [real; transformed] pairs gives both losses, the
discriminator's gradients and d(adversarial loss)/d(M x, M y) (`gan_step`); autograd chains the
latter, plus lambda * the identity regulariser, to the elements; then the generator's and the
discriminator's Adam steps. This is the one-generator-step-then-one-discriminator-step
procedure exactly, not an approximation: the generator step changes only the elements, and the
discriminator step that follows it evaluates the unchanged discriminator on (M x, M y) computed
with the pre-step elements (detached), so both gradients are taken at the same point and one
forward pass serves both. Each loss term is per member and a seed's channel losses are summed;
Adam (torch's fused kernel, `fused_adam`, the same update rule) sees each seed's elements
[c, m, m] and each member's discriminator tensors as tensors of their own (training.seed_views),
so its update is that of a single run. Seed k is initialised as a single run (seed_everything(k),
then LinearElements, then its c discriminators, on the CPU) and its data order is drawn from its
own generator as training.batches draws it, so nothing of seed k depends on the other seeds; a
short last batch (rows not a multiple of 32) runs seed by seed, so the kernels see a seed's rows
exactly as a single run does. Measured on CPU (torch 2.13): bit-identical to single runs, and
equal to the per-channel autograd loop this replaced to float32 rounding
(tests/test_symmetrygan_ensemble.py); 3 seeds, c = 3, n = 3, 4000 rows, discriminator
[512, 512], 1 thread: 0.55-0.65 x the CPU time per epoch of three single runs. One host sync
per step (the numerical guard: it names the seed in an ensemble and fires before either
optimiser step); a checkpoint holds the whole ensemble and is resumed only for the same list of
seeds.
"""
from __future__ import annotations

import time
import warnings
from typing import Any, Sequence

import numpy as np
import scipy.linalg
import torch
from torch import nn

from ..data.dataset import Dataset
from ..group import act_blocks, pick, stacked_identity_regulariser
from ..nets import PairDiscriminator, StackedDiscriminator, flat_dim
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

DEFAULTS: dict[str, Any] = {
    "lr_generator": 1e-3,
    "lr_discriminator": 2e-4,
    "betas_generator": [0.5, 0.999],
    "betas_discriminator": [0.9, 0.999],
    "lambda_identity": 0.0,
    "discriminator_hidden": [512, 512],
    "embedding_dim": 32,
    "init_scale": 1.0,
    # torch's fused Adam kernel: the same update rule as the default Adam in one kernel per
    # parameter list (as liegan's); False selects the default implementation.
    "fused_adam": True,
}

CHECKPOINT_FORMAT = "symmetrygan-stacked-v1"


class LinearElements(nn.Module):
    """c learnable matrices [c, m, m] (mask applied), initialised as exponentials of random matrices."""

    def __init__(self, space: SearchSpace, init_scale: float):
        super().__init__()
        c, m = space.channels, space.matrix_size
        a = torch.randn(c, m, m, dtype=torch.float64) * (init_scale / np.sqrt(m))
        self.elements = nn.Parameter(torch.linalg.matrix_exp(a).float())
        mask = torch.ones(m, m) if space.mask is None else torch.as_tensor(space.mask, dtype=torch.float32)
        self.register_buffer("mask", mask)

    def forward(self) -> torch.Tensor:
        return self.elements * self.mask


class StackedElements(nn.Module):
    """S seeds' LinearElements as one parameter [S, c, m, m] (one mask), for an ensemble of seeds."""

    def __init__(self, singles: Sequence[LinearElements]):
        super().__init__()
        self.elements = nn.Parameter(torch.stack([e.elements.detach() for e in singles]))
        self.register_buffer("mask", singles[0].mask.detach().clone())

    def forward(self, seeds: slice = slice(None)) -> torch.Tensor:
        """Masked elements [S, c, m, m] (of the seeds selected by `seeds`)."""
        return pick(self.elements, seeds) * self.mask


def orthogonality_error(m: np.ndarray) -> np.ndarray:
    """||M^T M - I||_F / sqrt(m) per element [c]: 0 for an orthogonal matrix."""
    k = m.shape[-1]
    return np.linalg.norm(np.swapaxes(m, -1, -2) @ m - np.eye(k), axis=(-2, -1)) / np.sqrt(k)


def element_logarithms(elements: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """Real parts of the principal logarithms [c, m, m] and flags for complex or failed logarithms."""
    logs = np.zeros_like(elements)
    complex_log = failed = negative = 0
    for i, m in enumerate(elements):
        eig = np.linalg.eigvals(m)
        scale = max(1.0, float(np.abs(eig).max()))
        negative += int(np.sum((np.abs(eig.imag) <= 1e-9 * scale) & (eig.real < 0)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            log = scipy.linalg.logm(m) if np.abs(eig).min() > 1e-12 * scale else None
        if log is None or not np.all(np.isfinite(log)):
            failed += 1
            continue
        log = np.asarray(log)
        if np.iscomplexobj(log):
            if np.abs(log.imag).max() > 1e-8 * max(1.0, float(np.abs(log.real).max())):
                complex_log += 1
            log = log.real
        logs[i] = log
    flags = {
        "logm_complex": float(complex_log > 0),
        "logm_failed": float(failed > 0),
        "negative_real_eigenvalues": float(negative),
    }
    return logs, flags


def train_symmetrygan(
    data: Dataset,
    space: SearchSpace,
    budget: Budget,
    seeds: Sequence[int],
    params: dict[str, Any],
    ctx: RunContext,
) -> list[Discovery]:
    """Train SymmetryGAN for each seed in `seeds` as one stacked model; one Discovery per seed, in order.

    Raises ValueError for an empty or repeated seed list; training.NumericalError (naming the
    seed when there are several) when any seed produces a non-finite M x or loss.
    """
    seeds = distinct_seeds(seeds)
    hp = {**DEFAULTS, **params}
    device = resolve_device(ctx.device)
    if device.type == "cpu":
        keep_freed_memory()
    S, c, m = len(seeds), space.channels, space.matrix_size
    x_all, y_all, _ = data_tensors(data, device)
    gens: list[torch.Generator] = []
    singles: list[LinearElements] = []
    discs: list[PairDiscriminator] = []
    with torch.device("cpu"):  # initialise on the CPU: a seed starts from the same weights on every device
        for seed in seeds:
            gens.append(seed_everything(seed))
            singles.append(LinearElements(space, float(hp["init_scale"])))
            discs.extend(
                PairDiscriminator(
                    x_all.shape[1:], y_all.shape[1:], data.y_rep, hp["discriminator_hidden"], int(hp["embedding_dim"])
                )
                for _ in range(c)
            )
    elements = StackedElements(singles).to(device)
    disc = StackedDiscriminator(discs).to(device)
    del singles, discs
    d_params = list(disc.parameters())
    # per seed one tensor [c, m, m] and per member its own discriminator tensors, as in a single run
    g_views = seed_views([elements.elements], S)
    d_views = seed_views(d_params, S * c)
    fused = bool(hp["fused_adam"])
    opt_g = torch.optim.Adam(g_views, lr=hp["lr_generator"], betas=tuple(hp["betas_generator"]), fused=fused)
    opt_d = torch.optim.Adam(d_views, lr=hp["lr_discriminator"], betas=tuple(hp["betas_discriminator"]), fused=fused)
    lam = float(hp["lambda_identity"])

    ckpt = EnsembleCheckpointer(
        ctx.workdir, ctx.checkpoint_every, CHECKPOINT_FORMAT, seeds,
        {"elements": elements, "discriminator": disc, "opt_generator": opt_g, "opt_discriminator": opt_d},
        gens, "symmetrygan",
    )
    state = ckpt.restore()
    start_epoch = int(state["epoch"]) if state else 0
    logs: list[list[dict[str, Any]]] = [list(log) for log in state["logs"]] if state else [[] for _ in seeds]

    n, bs = x_all.shape[0], budget.batch_size
    x_shape, y_shape = tuple(x_all.shape[1:]), tuple(y_all.shape[1:])
    nx = flat_dim(x_shape)
    y_moves = data.y_rep["type"] == "vector"
    targets_d = StackedDiscriminator.gan_targets(S * c, n, bs, device)

    def per_member(t: torch.Tensor) -> torch.Tensor:
        """A seeds' batch [s, B, ...] -> [s * c, B, ...]: each seed's rows for each of its channels."""
        return t.unsqueeze(1).expand(t.shape[0], c, *t.shape[1:]).reshape(-1, *t.shape[1:])

    def gan_pass(k: int | None, x: torch.Tensor, y: torch.Tensor, targets: torch.Tensor) -> tuple:
        """One batch of all seeds (k None) or of seed k alone: per-seed losses, M x, gradients (generator: [S, ...])."""
        s, b = x.shape[:2]
        mats = elements(slice(None) if k is None else slice(k, k + 1))
        xm, ym = per_member(x), per_member(y)
        g_el = mats.reshape(s * c, 1, m, m).expand(s * c, b, m, m).reshape(s * c * b, m, m)
        gx = act_blocks(g_el, xm.reshape(s * c * b, *x_shape), data.x_rep).reshape(s * c, b, *x_shape)
        gy = act_blocks(g_el, ym.reshape(s * c * b, *y_shape), data.y_rep).reshape(s * c, b, *y_shape)
        members = slice(None) if k is None else slice(k * c, (k + 1) * c)
        loss_d, adv, grads_d, d_fake = disc.gan_step(xm, ym, gx.detach(), gy.detach(), targets, members)
        reg_id = stacked_identity_regulariser(gx, xm)
        # generator gradient: d adv / d (M x, M y) from the discriminator, chained by autograd
        surrogate = lam * reg_id.sum() + (gx * d_fake[..., :nx].reshape(gx.shape)).sum()
        if y_moves:
            surrogate = surrogate + (gy * d_fake[..., nx:].reshape(gy.shape)).sum()
        grad_g, = torch.autograd.grad(surrogate, [elements.elements])
        # per seed, summed over its channels (the losses of a single run)
        loss_g, loss_d, adv, reg_id = (t.reshape(s, c).sum(1) for t in (adv + lam * reg_id, loss_d, adv, reg_id))
        return loss_g, loss_d, adv, reg_id, gx, grad_g, grads_d

    bar = Progress(budget.epochs - start_epoch, "symmetrygan" if S == 1 else f"symmetrygan x{S}", ctx.progress)
    for epoch in range(start_epoch, budget.epochs):
        t0 = time.perf_counter()
        # each seed's data order from its own stream, one permutation per epoch as training.batches draws it
        perm = torch.stack([torch.randperm(n, generator=g, device="cpu") for g in gens]).to(device)
        sums = torch.zeros(3, S, device=device)
        steps = 0
        for step, i0 in enumerate(range(0, n, bs)):
            idx = perm[:, i0 : i0 + bs]
            b = idx.shape[1]
            x, y = x_all[idx], y_all[idx]
            if S == 1 or b % 32 == 0:
                loss_g, loss_d, adv, reg_id, gx, grad_g, grads_d = gan_pass(None, x, y, targets_d[b])
            else:
                # a short last batch runs seed by seed: vectorised kernels then see a seed's rows as a single run does
                parts = [gan_pass(k, x[k : k + 1], y[k : k + 1], targets_d[b][:c]) for k in range(S)]
                loss_g, loss_d, adv, reg_id, gx = (torch.cat([p[i] for p in parts]) for i in range(5))
                grad_g = torch.stack([p[5][k] for k, p in enumerate(parts)])
                grads_d = [torch.cat([p[6][i] for p in parts]) for i in range(len(d_params))]
            probe = loss_g.detach().sum() + loss_d.detach().sum() + gx.detach().abs().amax()
            if not bool(torch.isfinite(probe)):
                check_finite_per_seed(
                    seeds,
                    [("transformed data M x", gx.reshape(S, -1)), ("generator loss", loss_g),
                     ("discriminator loss", loss_d)],
                    elements().detach().flatten(1).norm(dim=1).tolist(), epoch, step,
                )
            set_seed_grads(g_views, [grad_g], S)
            set_seed_grads(d_views, grads_d, S * c)
            opt_g.step()
            opt_d.step()
            sums += torch.stack([loss_d.detach(), adv.detach(), reg_id.detach()]) / c
            steps += 1
        means = (sums / steps).T.tolist()
        mats_np = elements().detach().cpu().double().numpy()
        seconds = time.perf_counter() - t0
        for k in range(S):
            logs[k].append({
                "epoch": epoch + 1,
                "loss_discriminator": means[k][0],
                "loss_generator_adversarial": means[k][1],
                "regulariser_identity": means[k][2],
                "element_norm": float(np.linalg.norm(mats_np[k])),
                "orthogonality_error": float(orthogonality_error(mats_np[k]).max()),
                "seconds": seconds,
            })
        bar.update(1, d=means[0][0], g=means[0][1], id=means[0][2])
        ckpt.save_if_due(epoch + 1, budget.epochs, {"logs": logs})
    bar.close()
    mats_np = elements().detach().cpu().double().numpy()
    return [_discovery(space, mats_np[k], logs[k]) for k in range(S)]


def _discovery(space: SearchSpace, mats_np: np.ndarray, log: list[dict[str, Any]]) -> Discovery:
    """One seed's result from its learned elements [c, m, m]: logarithms, flags, angles (see the module docstring)."""
    logs, flags = element_logarithms(mats_np)
    info: dict[str, Any] = {
        "element_blocks": mats_np,
        "generator_blocks": logs,
        "orthogonality_error": float(orthogonality_error(mats_np).max()),
        **flags,
    }
    if space.matrix_size == 2:
        angles = np.degrees(np.arctan2(mats_np[:, 1, 0] - mats_np[:, 0, 1], mats_np[:, 0, 0] + mats_np[:, 1, 1]))
        info.update(
            {"rotation_angle_deg": float(angles[0])} if space.channels == 1
            else {f"rotation_angle_deg_{i}": float(a) for i, a in enumerate(angles)}
        )
    return Discovery(
        generators=space.effective(logs),
        # the learned element, its inverse and the identity: exp(w L) for w in {-1, 0, 1}
        coefficient_distribution={"distribution": "integer", "low": -1, "high": 1},
        log=log,
        info=info,
    )


@register("symmetrygan")
class SymmetryGAN:
    """SymmetryGAN: one learned linear transformation per channel; hyperparameters in DEFAULTS."""

    name = "symmetrygan"

    def skip(self, data: Dataset, space: SearchSpace) -> str | None:
        reason = vector_inputs_only(data, "SymmetryGAN")
        if reason:
            return reason
        return None

    def fit(
        self,
        data: Dataset,
        space: SearchSpace,
        budget: Budget,
        seed: int,
        params: dict[str, Any],
        ctx: RunContext,
    ) -> Discovery:
        return train_symmetrygan(data, space, budget, [seed], params, ctx)[0]

    def fit_seeds(
        self,
        data: Dataset,
        space: SearchSpace,
        budget: Budget,
        seeds: Sequence[int],
        params: dict[str, Any],
        ctx: RunContext,
    ) -> list[Discovery]:
        """All seeds as one batched ensemble; each Discovery is what `fit` returns for that seed
        (its log's `seconds` is the wall time of the ensemble's epoch, shared by all seeds)."""
        return train_symmetrygan(data, space, budget, seeds, params, ctx)
