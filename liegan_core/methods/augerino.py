"""Augerino+ as in the LieGAN paper's comparison (after Benton et al., NeurIPS 2020, "Augerino").

A learned augmentation g = exp(sum_i w_i L_i), with the same Lie algebra generator as LieGAN
(group.LieGenerator: the search space's blocks, mask and coefficient law), is trained jointly
with a predictor on the task "predict g.y from g.x": MSE for vector or scalar y (a scalar y is
left unchanged by g), cross-entropy for a class label. Augerino's width term, which rewards
larger augmentations, is replaced by LieGAN's identity avoidance lambda * |mean cos(g.x, x)|
(group.identity_regulariser) plus LieGAN's channel orthogonality eta * n * sum_{i<j} |cos(L_i, L_j)|
(which vanishes for c = 1). One Adam optimiser
over predictor and generator, one coefficient draw per sample per step. Gradients of the task
loss flow into the generator, so it is pushed towards transformations under which the task
stays predictable.

Defaults (sources): Adam lr 1e-3 and a predictor MLP on the flattened x with hidden layers
512-512 and ReLU (the project's specification of the comparison; Augerino's own experiments also
train with Adam); lambda_identity 1.0 (the LieGAN paper's published command `main_augerino.py
--lamda 1`); eta_orthogonality 0.1 and init_scale 'auto' (LieGAN's own defaults, so both methods
start from the same generator).

How the work is done: S seeds train as one stacked model (`train_augerino`; `Augerino.fit` is
S = 1, `Augerino.fit_seeds` S > 1, one code path). Every parameter has a leading seed axis
[S, ...]: the predictor's layers are weights [S, in, out] applied with torch.baddbmm, the group
elements of all seeds are one batch of matrix exponentials (group.expm: closed form for 2 x 2
blocks), each loss term is computed per seed and the seeds' losses are summed before the
backward pass (d sum / d loss_k = 1, so each seed's gradient is exactly its own), and Adam sees
each seed's slice of a stacked parameter as a tensor of its own (its per-tensor behaviour stays
per seed). Seed k is initialised as a single run (training.seed_everything(k), LieGenerator,
predictor, on the CPU), and its data order and coefficients come from its own CPU generator in
the same order as a single run draws them (per epoch: the permutation, then each batch's
coefficients), so nothing of seed k depends on the other seeds or on the device. One host sync
per step (the numerical guard); a checkpoint holds the whole ensemble and is resumed only for
the same list of seeds.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..data.dataset import Dataset
from ..group import (
    LieGenerator,
    StackedGenerator,
    act_blocks,
    expm,
    pick,
    resolve_init_scale,
    stacked_identity_regulariser,
    stacked_orthogonality_regulariser,
)
from ..nets import flat_dim, mlp
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
    "lr": 1e-3,
    "lambda_identity": 1.0,
    "eta_orthogonality": 0.1,
    "predictor_hidden": [512, 512],
    "init_scale": "auto",
    # torch's fused Adam kernel: the same update rule as the default Adam in one kernel per
    # parameter list (as liegan's and symmetrygan's); False selects the default implementation.
    "fused_adam": True,
}

CHECKPOINT_FORMAT = "augerino-stacked-v1"


class StackedAugerino(nn.Module):
    """S seeds' LieGenerators (group.StackedGenerator) and predictor MLPs as one module.

    Built from S initialised LieGenerators and predictors (nets.mlp: Linear layers with ReLU
    between), so each seed starts from exactly the parameters of a single run. Predictor layer i
    is weights[i] [S, in, out] (the Linear's weight transposed) and biases[i] [S, 1, out].
    """

    def __init__(self, generators: Sequence[LieGenerator], predictors: Sequence[nn.Sequential]):
        super().__init__()
        self.lie = StackedGenerator(generators)
        linears = [[layer for layer in p if isinstance(layer, nn.Linear)] for p in predictors]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([layers[i].weight.detach().t() for layers in linears]).contiguous())
            for i in range(len(linears[0]))
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([layers[i].bias.detach() for layers in linears]).unsqueeze(1))
            for i in range(len(linears[0]))
        )

    def predict(self, h: torch.Tensor, seeds: slice = slice(None)) -> torch.Tensor:
        """Predictor outputs [S, B, out] for flattened inputs [S, B, in] (of the seeds selected by `seeds`)."""
        last = len(self.weights) - 1
        for i, (w, bias) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(pick(bias, seeds), h, pick(w, seeds))
            if i < last:
                h = F.relu(h)
        return h


def train_augerino(
    data: Dataset,
    space: SearchSpace,
    budget: Budget,
    seeds: Sequence[int],
    params: dict[str, Any],
    ctx: RunContext,
) -> list[Discovery]:
    """Train Augerino+ for each seed in `seeds` as one stacked model; one Discovery per seed, in order.

    Raises ValueError for an empty or repeated seed list; training.NumericalError (naming the
    seed when S > 1) when any seed produces a non-finite g.x or loss.
    """
    seeds = distinct_seeds(seeds)
    hp = {**DEFAULTS, **params}
    init_scale = resolve_init_scale(hp["init_scale"], space, "augerino")
    device = resolve_device(ctx.device)
    if device.type == "cpu":  # the stacked weight gradients are MBs: reuse their pages instead of faulting them in
        keep_freed_memory()
    S = len(seeds)
    x_all, y_all, label = data_tensors(data, device)
    out_dim = int(data.y_rep["classes"]) if label else flat_dim(y_all.shape[1:])
    sizes = [flat_dim(x_all.shape[1:]), *hp["predictor_hidden"], out_dim]
    gens: list[torch.Generator] = []
    lie_gens: list[LieGenerator] = []
    predictors: list[nn.Sequential] = []
    with torch.device("cpu"):  # initialise on the CPU: a seed starts from the same weights on every device
        for seed in seeds:
            gens.append(seed_everything(seed))
            lie_gens.append(LieGenerator(space, init_scale=init_scale))
            predictors.append(mlp(sizes))
    model = StackedAugerino(lie_gens, predictors).to(device)
    del lie_gens, predictors
    params_list = list(model.parameters())
    views = seed_views(params_list, S)  # Adam treats each seed's slice as a tensor of its own
    opt = torch.optim.Adam(views, lr=float(hp["lr"]), fused=bool(hp["fused_adam"]))
    lam, eta = float(hp["lambda_identity"]), float(hp["eta_orthogonality"])

    ckpt = EnsembleCheckpointer(ctx.workdir, ctx.checkpoint_every, CHECKPOINT_FORMAT, seeds,
                                {"model": model, "optimiser": opt}, gens, "augerino")
    state = ckpt.restore()
    start_epoch = int(state["epoch"]) if state else 0
    logs: list[list[dict[str, Any]]] = [list(log) for log in state["logs"]] if state else [[] for _ in seeds]

    n = x_all.shape[0]
    bs = budget.batch_size
    m, c = space.matrix_size, space.channels
    x_shape, y_shape = tuple(x_all.shape[1:]), tuple(y_all.shape[1:])
    batch_rows = [min(bs, n - i0) for i0 in range(0, n, bs)]

    def losses(sl: slice, x: torch.Tensor, y: torch.Tensor, raw: torch.Tensor) -> tuple:
        """One batch for the seeds `sl`: the per-seed losses [s], g.x, and the gradients (full stacked shapes;
        None for a learnable sigma that a uniform or integer law never uses, which Adam then skips as before)."""
        s, b = x.shape[:2]
        gens_lie = model.lie.generators(sl)
        w = model.lie.coefficients(raw, sl)
        g_el = expm(torch.bmm(w, gens_lie.reshape(s, c, m * m)).reshape(s * b, m, m))
        gx = act_blocks(g_el, x.reshape(s * b, *x_shape), data.x_rep).reshape(s, b, *x_shape)
        gy = act_blocks(g_el, y.reshape(s * b, *y_shape), data.y_rep).reshape(s, b, *y_shape)
        pred = model.predict(gx.reshape(s, b, -1), sl)
        if label:
            task = F.cross_entropy(pred.reshape(s * b, -1), gy.reshape(s * b), reduction="none").reshape(s, b)
        else:
            task = F.mse_loss(pred, gy.reshape(s, b, -1), reduction="none").reshape(s, -1)
        task = task.mean(1)
        reg_id = stacked_identity_regulariser(gx, x)
        reg_orth = stacked_orthogonality_regulariser(gens_lie, space.n)
        loss = task + lam * reg_id + eta * reg_orth
        grads = torch.autograd.grad(loss.sum(), params_list, allow_unused=True)
        return loss.detach(), task.detach(), reg_id.detach(), reg_orth.detach(), gx.detach(), grads

    bar = Progress(budget.epochs - start_epoch, "augerino" if S == 1 else f"augerino x{S}", ctx.progress)
    for epoch in range(start_epoch, budget.epochs):
        t0 = time.perf_counter()
        # one epoch of randomness per seed from its own stream, in a single run's order: the
        # permutation, then each batch's coefficients
        perms, raws = [], []
        for g in gens:
            perms.append(torch.randperm(n, generator=g, device="cpu"))
            raws.append(torch.cat([model.lie.draw(rows, g) for rows in batch_rows]))
        perm = torch.stack(perms).to(device)
        raw_all = torch.stack(raws).to(device)
        sums = torch.zeros(3, S, device=device)
        for step, i0 in enumerate(range(0, n, bs)):
            idx = perm[:, i0 : i0 + bs]
            b = idx.shape[1]
            x, y, raw = x_all[idx], y_all[idx], raw_all[:, i0 : i0 + bs]
            if S == 1 or b % 32 == 0:
                loss, task, reg_id, reg_orth, gx, grads = losses(slice(None), x, y, raw)
            else:
                # a batch whose per-seed size is not a multiple of 32 (the last, short one) runs seed by
                # seed: vectorised elementwise kernels then see each seed's rows exactly as a single run does
                parts = [losses(slice(k, k + 1), x[k : k + 1], y[k : k + 1], raw[k : k + 1]) for k in range(S)]
                loss, task, reg_id, reg_orth, gx = (torch.cat([p[i] for p in parts]) for i in range(5))
                grads = [None if parts[0][5][i] is None else torch.stack([p[5][i][k] for k, p in enumerate(parts)])
                         for i in range(len(params_list))]
            if not bool(torch.isfinite(loss.sum() + gx.abs().amax())):
                norms = model.lie.generators().detach().flatten(1).norm(dim=1).tolist()
                check_finite_per_seed(seeds, [("transformed data g.x", gx), ("Augerino+ loss", loss)], norms, epoch, step)
            set_seed_grads(views, grads, S)
            opt.step()
            sums += torch.stack([task, reg_id, reg_orth])
        means = (sums / len(batch_rows)).T.tolist()
        norms = model.lie.generators().detach().flatten(1).norm(dim=1).tolist()
        seconds = time.perf_counter() - t0
        for k in range(S):
            logs[k].append({
                "epoch": epoch + 1,
                "loss_task": means[k][0],
                "regulariser_identity": means[k][1],
                "regulariser_orthogonality": means[k][2],
                "generator_norm": norms[k],
                "seconds": seconds,
            })
        bar.update(1, task=means[0][0], id=means[0][1])
        ckpt.save_if_due(epoch + 1, budget.epochs, {"logs": logs})
    bar.close()
    blocks_all = model.lie.generators().detach().cpu().double().numpy()
    return [
        Discovery(
            generators=space.effective(blocks_all[k]),
            coefficient_distribution=model.lie.coefficient_distribution(k),
            log=logs[k],
            info={"blocks": blocks_all[k], "final_task_loss": logs[k][-1]["loss_task"]},
        )
        for k in range(S)
    ]


@register("augerino")
class Augerino:
    """Augerino+ (learned Lie-group augmentation + predictor); hyperparameters in DEFAULTS."""

    name = "augerino"

    def skip(self, data: Dataset, space: SearchSpace) -> str | None:
        return vector_inputs_only(data, "Augerino+")

    def fit(
        self,
        data: Dataset,
        space: SearchSpace,
        budget: Budget,
        seed: int,
        params: dict[str, Any],
        ctx: RunContext,
    ) -> Discovery:
        return train_augerino(data, space, budget, [seed], params, ctx)[0]

    def fit_seeds(
        self,
        data: Dataset,
        space: SearchSpace,
        budget: Budget,
        seeds: Sequence[int],
        params: dict[str, Any],
        ctx: RunContext,
    ) -> list[Discovery]:
        """All seeds as one batched ensemble (train_augerino); each seed's Discovery is what `fit` gives it."""
        return train_augerino(data, space, budget, seeds, params, ctx)
