"""Several seeds of LieGAN trained as one batched ensemble in one process.

`fit_seeds(data, space, budget, seeds, params, ctx)` trains one LieGAN per seed with all
parameters stacked along a leading seed axis [S, ...]: each discriminator layer is one
torch.baddbmm over the seeds, the group elements of all seeds are one batch of matrix
exponentials, and Adam (elementwise) updates the stacked tensors. It is the same code as a
single run (`liegan.train_liegan` with one seed), so the science is the same by construction:

* seed k is initialised exactly as a single run with seed k would be;
* its data order and coefficients come from its own generator (`seed + 1_000_003`, as
  `training.seed_everything`), drawn on the CPU once per epoch, so they do not depend on the
  other seeds, on the ensemble's size or on the device;
* every loss term is computed per seed and the seeds' losses are summed before the backward
  pass, so each seed's gradient is exactly its own (d(sum)/d(loss_k) = 1).

Bit-identical to single runs, not just equal in distribution (measured on CPU, torch 2.13: seeds
0, 1, 2 of the 2-body task, 30 epochs, every generator entry and every logged loss equal; also
with 1 or 2 threads). Three details make it so, since a kernel's rounding can depend on a
tensor's shape: the one-output layer is applied as w @ h^T (a single-column batched product
takes another kernel when S > 1), Adam sees each seed's slice of a parameter as a tensor of its
own, and a short last batch (per-seed rows not a multiple of 32) runs seed by seed.
tests/test_perf_paths.py checks it on a small problem.

Speed (two_body at the paper's settings, 2 cores, quiet machine; benchmarks/perf/run.py): one
seed 0.84-0.88 s per epoch; 8 seeds in one process with 2 threads 0.48-0.50 s per epoch per
seed; two processes with 1 thread each, 4-8 seeds each, 0.41-0.45 s per epoch per seed. So on a
small machine run one ensemble per core (threads: 1) rather than one 2-thread ensemble.

Image data (the rotated-digits task) has no stacked path: its seeds train one after another.

Not a registered method: the runner calls `fit_seeds` when a profile asks for `ensemble: true`.
A checkpoint (ctx.workdir/checkpoint.pt) holds the whole ensemble and is resumed only for the
same list of seeds. A non-finite quantity in any seed stops the whole ensemble with a message
naming the seed; rerun that seed alone to investigate.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from ..data.dataset import Dataset
from .base import Budget, Discovery, RunContext, SearchSpace
from .liegan import LieGAN, train_liegan


def fit_seeds(
    data: Dataset,
    space: SearchSpace,
    budget: Budget,
    seeds: Sequence[int],
    params: dict[str, Any],
    ctx: RunContext,
) -> list[Discovery]:
    """Train LieGAN once per seed, all seeds batched in this process; Discoveries in the order of `seeds`.

    Each Discovery is what `LieGAN().fit(data, space, budget, seed, params, ctx)` returns for
    that seed (its log's `seconds` is the wall time of the ensemble's epoch, shared by all seeds).
    Raises ValueError for an empty or repeated seed list or data LieGAN cannot handle;
    training.NumericalError (naming the seed) when any seed produces a non-finite value.
    """
    reason = LieGAN().skip(data, space)
    if reason:
        raise ValueError(f"LieGAN cannot run on this data: {reason}")
    if data.x_rep["type"] == "grid":  # images train one seed at a time (liegan_images), each in its own folder
        return [LieGAN().fit(data, space, budget, seed, params, _seed_context(ctx, seed)) for seed in seeds]
    return train_liegan(data, space, budget, list(seeds), params, ctx)


def _seed_context(ctx: RunContext, seed: int) -> RunContext:
    """ctx with workdir/seed<k> (so each seed keeps its own checkpoint), or ctx itself without a workdir."""
    if not ctx.workdir:
        return ctx
    workdir = Path(ctx.workdir) / f"seed{seed}"
    workdir.mkdir(parents=True, exist_ok=True)
    return replace(ctx, workdir=str(workdir))
