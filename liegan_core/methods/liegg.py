"""LieGG (Moskalev, Sepliarskaia, Sosnovik, Smeulders; NeurIPS 2022): generators from a trained network.

First a predictor f (MLP on the flattened x) is trained on the task x -> y. If f has a symmetry
with generator L (the search space's block acting as kron(I, L) on every m-block of a vector),
then for every input x the infinitesimal symmetry condition holds:

  invariant output (scalar y; class label: the true class's logit)   J_f(x) L_eff x = 0
  equivariant output (vector y, the same block action on y)          J_f(x) L_eff x - L_eff f(x) = 0

Both are linear in the entries of L: output row k gives
  sum_{blocks b} sum_{a, j} J[k, (b, a)] x_b[j] L[a, j]  (minus f_{b'(k)}[j] L[a'(k), j] in the
  equivariant case), so each sample contributes `outputs` rows over the m*m unknowns; only the
  mask's free entries are kept as unknowns. The rows of each sample are scaled to unit Frobenius
  norm (so samples with large gradients do not dominate; one row per sample for a scalar
  output, hence plain row normalisation there), stacked for a random subsample of n_samples
  training points into the polarisation matrix E, and E / sqrt(rows) is decomposed by SVD. The
  `channels` right-singular vectors with the smallest singular values are the generators (unit
  Frobenius norm, sign fixed so that the largest-magnitude entry is positive).

info: `singular_values` (all, ascending, of E / sqrt(rows)), `singular_value_0` ... `singular_value_c`
(the c + 1 smallest: the chosen ones and the first rejected one, whose gap shows how clearly the
symmetry stands out), `final_task_loss`.

Defaults (our choices, LieGG prescribes no architecture): MLP [128, 128] with SiLU (a smooth
activation, because the method reads input gradients, which are piecewise constant for ReLU
networks), Adam lr 1e-3 over budget.epochs, n_samples 2000.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.dataset import Dataset
from ..nets import flat_dim, mlp
from ..training import (
    Checkpointer,
    NumericalError,
    Progress,
    batches,
    data_tensors,
    resolve_device,
    seed_everything,
    vector_inputs_only,
)
from . import register
from .base import Budget, Discovery, RunContext, SearchSpace

DEFAULTS: dict[str, Any] = {
    "lr": 1e-3,
    "predictor_hidden": [128, 128],
    "n_samples": 2000,
}


def constraint_rows(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, y_rep: dict[str, Any], m: int
) -> torch.Tensor:
    """The symmetry constraints on the m*m block entries, [B, outputs, m*m] (module docstring)."""
    b = x.shape[0]
    xf = x.reshape(b, -1)
    jac = torch.func.vmap(torch.func.jacrev(model))(xf)  # [B, outputs, nx]
    if y_rep["type"] == "label":
        jac = jac[torch.arange(b), y.long()][:, None]
    rows = torch.einsum("bkra,brj->bkaj", jac.reshape(b, jac.shape[1], -1, m), xf.reshape(b, -1, m))
    if y_rep["type"] == "vector":
        out = model(xf).reshape(b, -1, m)  # [B, output blocks, m]
        eye = torch.eye(m, dtype=x.dtype, device=x.device)
        rows = rows - torch.einsum("pa,bkj->bkpaj", eye, out).reshape(rows.shape)
    return rows.reshape(b, rows.shape[1], m * m)


def smallest_right_singular(e: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Singular values of e [R, u] ascending (zeros for a rank-deficient short e) and the k right
    singular vectors [k, u] with the smallest ones."""
    rows, u = e.shape
    if rows < u:
        e = np.vstack([e, np.zeros((u - rows, u))])
    _, s, vt = np.linalg.svd(e, full_matrices=False)
    return s[::-1].copy(), vt[::-1][:k]


@register("liegg")
class LieGG:
    """LieGG: symmetry generators from the null space of a trained network's polarisation matrix."""

    name = "liegg"

    def skip(self, data: Dataset, space: SearchSpace) -> str | None:
        reason = vector_inputs_only(data, "LieGG")
        if reason:
            return reason
        if data.y_rep["type"] == "grid":
            return "y representation 'grid' is not supported by this LieGG implementation"
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
        hp = {**DEFAULTS, **params}
        device = resolve_device(ctx.device)
        gen = seed_everything(seed)
        x_all, y_all, label = data_tensors(data, device)
        out_dim = int(data.y_rep["classes"]) if label else flat_dim(y_all.shape[1:])
        model = mlp([flat_dim(x_all.shape[1:]), *hp["predictor_hidden"], out_dim], nn.SiLU).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=float(hp["lr"]))
        ckpt = Checkpointer(ctx.workdir, ctx.checkpoint_every, {"predictor": model, "optimiser": opt}, gen)
        start_epoch, log = ckpt.restore()

        n = x_all.shape[0]
        bar = Progress(budget.epochs - start_epoch, "liegg", ctx.progress)
        for epoch in range(start_epoch, budget.epochs):
            t0 = time.perf_counter()
            total = torch.zeros((), device=device)
            steps = 0
            for step, idx in enumerate(batches(n, budget.batch_size, gen)):
                idx = idx.to(device)
                x, y = x_all[idx], y_all[idx]
                pred = model(x.reshape(x.shape[0], -1))
                loss = F.cross_entropy(pred, y) if label else F.mse_loss(pred, y.reshape(y.shape[0], -1))
                if not bool(torch.isfinite(loss.detach())):
                    raise NumericalError(f"non-finite predictor loss at epoch {epoch}, step {step}; lower the learning rate")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach()
                steps += 1
            log.append({"epoch": epoch + 1, "loss_task": float(total / steps), "seconds": time.perf_counter() - t0})
            bar.update(1, task=log[-1]["loss_task"])
            ckpt.save_if_due(epoch + 1, budget.epochs, log)
        bar.close()

        m, c = space.matrix_size, space.channels
        idx = torch.randperm(n, generator=gen)[: int(hp["n_samples"])].to(device)
        model.requires_grad_(False)
        rows = constraint_rows(model, x_all[idx], y_all[idx], data.y_rep, m).double().cpu().numpy()
        free = np.ones(m * m, bool) if space.mask is None else space.mask.ravel() != 0
        rows = rows[:, :, free]
        norms = np.linalg.norm(rows, axis=(1, 2))
        rows = rows[norms > 1e-12] / norms[norms > 1e-12, None, None]
        e = rows.reshape(-1, int(free.sum()))
        singular, vecs = smallest_right_singular(e / np.sqrt(max(e.shape[0], 1)), c)
        vecs = vecs * np.sign(vecs[np.arange(len(vecs)), np.abs(vecs).argmax(axis=1)])[:, None]
        blocks = np.zeros((c, m * m))
        blocks[: len(vecs), free] = vecs
        blocks = blocks.reshape(c, m, m)
        info: dict[str, Any] = {
            "blocks": blocks,
            "singular_values": singular,
            "final_task_loss": log[-1]["loss_task"],
            "constraint_rows": float(e.shape[0]),
        }
        info.update({f"singular_value_{k}": float(v) for k, v in enumerate(singular[: c + 1])})
        return Discovery(
            generators=space.effective(blocks),
            # LieGG finds directions only; the search space's coefficient law is passed on unchanged
            coefficient_distribution=dict(space.coefficients),
            log=log,
            info=info,
        )
