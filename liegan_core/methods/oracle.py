"""Reference rows: `oracle` returns the true algebra (given by the pipeline, not the data), `none` nothing."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..data.dataset import Dataset
from . import register
from .base import Budget, Discovery, RunContext, SearchSpace


@register("oracle")
class Oracle:
    """The ground-truth algebra, passed explicitly through params['true_algebra'] by the runner.

    The only method that sees the truth, by design: its rows are the ceiling for every metric.
    """

    name = "oracle"

    def skip(self, data: Dataset, space: SearchSpace) -> str | None:
        return None

    def fit(self, data: Dataset, space: SearchSpace, budget: Budget, seed: int, params: dict[str, Any],
            ctx: RunContext) -> Discovery:
        truth = params.get("true_algebra")
        if truth is None:
            raise ValueError("oracle needs the task's true algebra; this task has none")
        return Discovery(generators=np.asarray(truth, dtype=np.float64), coefficient_distribution={"distribution": "normal", "sigma": 1.0})


@register("none")
class NoSymmetry:
    """No symmetry: an empty generator set [0, n, n] (similarity 0, no augmentation)."""

    name = "none"

    def skip(self, data: Dataset, space: SearchSpace) -> str | None:
        return None

    def fit(self, data: Dataset, space: SearchSpace, budget: Budget, seed: int, params: dict[str, Any],
            ctx: RunContext) -> Discovery:
        return Discovery(generators=np.zeros((0, space.n, space.n)), coefficient_distribution={})
