"""The discovery-method protocol: what every method receives and returns.

A method is one module defining a class with a `name`, an optional `skip`, and `fit`, decorated
with `@register`. It receives the training split only (never the ground truth), the search space,
a budget and a seed, and returns a `Discovery`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..data.dataset import Dataset
from ..errors import UserError


@dataclass
class SearchSpace:
    """Where a method looks for generators.

    n: dimension of the vectors the group acts on; channels: number of generators c;
    block: if set, each generator is one block [block, block] repeated on every block-vector
    (kron(I_{n/block}, L), the paper's 2x2 factorisation); mask: optional [m, m] 0/1 array over
    the (block) generator's entries that may be non-zero; coefficients: how w is sampled,
    {"distribution": "normal"|"uniform"|"integer", "sigma", "learnable", "low", "high"}.
    """

    n: int
    channels: int = 1
    block: int | None = None
    mask: np.ndarray | None = None
    coefficients: dict[str, Any] = field(default_factory=lambda: {"distribution": "normal", "sigma": 1.0})

    def __post_init__(self) -> None:
        if self.channels < 1:
            raise UserError(f"search_space.channels must be >= 1, got {self.channels}")
        if self.block is not None and (self.block < 1 or self.n % self.block):
            raise UserError(f"search_space.block={self.block} must divide search_space.n={self.n}")
        m = self.matrix_size
        if self.mask is not None:
            self.mask = np.asarray(self.mask, dtype=np.float64)
            if self.mask.shape != (m, m):
                raise UserError(f"search_space.mask must have shape [{m}, {m}], got {list(self.mask.shape)}")

    @property
    def matrix_size(self) -> int:
        """Size of the learned matrices: the block size, or n for a full search space."""
        return self.block or self.n

    @property
    def copies(self) -> int:
        return self.n // self.matrix_size

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "SearchSpace":
        return cls(
            n=int(cfg["n"]),
            channels=int(cfg.get("channels", 1)),
            block=cfg.get("block"),
            mask=None if cfg.get("mask") is None else np.asarray(cfg["mask"]),
            coefficients=dict(cfg.get("coefficients") or {"distribution": "normal", "sigma": 1.0}),
        )

    def effective(self, blocks: np.ndarray) -> np.ndarray:
        """Learned matrices [c, m, m] -> the generators acting on the data [c, n, n]."""
        from ..lie import repeat_block

        blocks = np.asarray(blocks, dtype=np.float64)
        if self.mask is not None:
            blocks = blocks * self.mask
        return repeat_block(blocks, self.copies) if self.copies > 1 else blocks


@dataclass
class Budget:
    """Training budget, stated per method in the benchmark YAML."""

    epochs: int = 1
    batch_size: int = 64


@dataclass
class Discovery:
    """What a method found.

    generators: [c, n, n] effective Lie algebra basis acting on the data (mask applied).
    coefficient_distribution: how to sample w for g = exp(sum w_i L_i) (e.g. for augmentation).
    log: one dict per epoch (losses etc.), written to log.csv.
    info: extra scalars/arrays worth keeping (e.g. LieGG's singular values).
    """

    generators: np.ndarray
    coefficient_distribution: dict[str, Any] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    """Where and how a method runs: device, a folder for checkpoints, whether to show progress."""

    device: str = "cpu"
    workdir: str | None = None
    progress: bool = False
    checkpoint_every: int = 10


class Method(Protocol):
    """What a method module's class provides.

    Optionally a method also defines `fit_seeds(data, space, budget, seeds, params, ctx) ->
    list[Discovery]` (one Discovery per seed, in order, each what `fit` returns for that seed up
    to float rounding): the runner then trains a task's seeds together when the profile says
    `ensemble: true`. Without it the seeds run in turn in one process.
    """

    name: str

    def skip(self, data: Dataset, space: SearchSpace) -> str | None:
        """Reason this method cannot handle the task, or None."""

    def fit(
        self,
        data: Dataset,
        space: SearchSpace,
        budget: Budget,
        seed: int,
        params: dict[str, Any],
        ctx: RunContext,
    ) -> Discovery: ...
