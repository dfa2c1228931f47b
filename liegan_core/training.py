"""Shared training machinery: devices, seeding, numerical guards, checkpoints, progress, logs."""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable

import torch

from .io import atomic_path


class NumericalError(RuntimeError):
    """Training produced a non-finite value; the run stops and writes no result."""


def resolve_device(device: str) -> torch.device:
    """'auto' picks CUDA when available; 'cuda' without a GPU is an error, not a silent fallback."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but no CUDA GPU is available (use 'auto' or 'cpu')")
    return torch.device(device)


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG (parameter init) and return a generator for data order and sampling."""
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed + 1_000_003)
    return gen


def set_threads(threads: int | None = None) -> None:
    """Use exactly `threads` intra-op threads (default: LIEGAN_THREADS, else what torch chose)."""
    env = os.environ.get("LIEGAN_THREADS")
    n = threads or (int(env) if env else None)
    if n:
        torch.set_num_threads(n)


def check_finite(name: str, value: torch.Tensor, epoch: int, step: int, generator_norm: float) -> None:
    """Stop with a message naming the quantity, epoch, step and generator norm on NaN/inf."""
    if not bool(torch.isfinite(value).all()):
        raise NumericalError(
            f"non-finite {name} at epoch {epoch}, step {step} (generator norm {generator_norm:.4g}); "
            "lower the learning rate or coefficient scale, or set max_exponent_norm to clip"
        )


def batches(n: int, batch_size: int, gen: torch.Generator) -> Iterable[torch.Tensor]:
    """Shuffled index batches over n rows, as tensors (no per-sample Python work)."""
    perm = torch.randperm(n, generator=gen)
    for i in range(0, n, batch_size):
        yield perm[i : i + batch_size]


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically write a checkpoint (tensors and plain data only, loadable with weights_only)."""
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any] | None:
    path = Path(path)
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


class Progress:
    """Epoch progress bar with live losses when stderr is a terminal; silent otherwise."""

    def __init__(self, total: int, desc: str, enabled: bool):
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False)

    def update(self, n: int, **losses: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items() if math.isfinite(v)})
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Checkpointer:
    """Resume and save a method's training in `workdir/checkpoint.pt`, every `every` epochs and at the end.

    Holds the state of every object with state_dict/load_state_dict (networks, optimisers), the
    data-order generator, torch's global RNG, the epoch and the log rows, so a resumed run
    continues exactly where the interrupted one stopped. Without a workdir it does nothing.
    """

    def __init__(self, workdir: str | None, every: int, objects: dict[str, Any], gen: torch.Generator):
        self.path = Path(workdir) / "checkpoint.pt" if workdir else None
        self.every = max(1, int(every))
        self.objects = objects
        self.gen = gen

    def restore(self) -> tuple[int, list[dict[str, Any]]]:
        """(epochs already done, their log rows); (0, []) when there is nothing to resume."""
        state = load_checkpoint(self.path) if self.path else None
        if state is None:
            return 0, []
        for name, obj in self.objects.items():
            obj.load_state_dict(state[name])
        self.gen.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        return int(state["epoch"]), list(state["log"])

    def save_if_due(self, epoch: int, total: int, log: list[dict[str, Any]]) -> None:
        """Save after `epoch` finished epochs when a save is due (every `every` epochs, and the last)."""
        if self.path is None or (epoch % self.every and epoch != total):
            return
        state: dict[str, Any] = {name: obj.state_dict() for name, obj in self.objects.items()}
        state.update(rng=self.gen.get_state(), torch_rng=torch.get_rng_state(), epoch=epoch, log=log)
        save_checkpoint(self.path, state)
