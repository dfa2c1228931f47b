"""Shared training machinery: devices, seeding, numerical guards, checkpoints, progress, logs."""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from .io import atomic_path


class NumericalError(RuntimeError):
    """Training produced a non-finite value; the run stops and writes no result."""


def resolve_device(device: str) -> torch.device:
    """'auto' picks CUDA when available; 'cuda' without a GPU is an error, not a silent fallback.

    A bare 'cuda' (or 'auto' on a GPU machine) becomes one GPU per process, see `gpu_index`; an
    explicit 'cuda:N' is used as given.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but no CUDA GPU is available (use 'auto' or 'cpu')")
    if device == "cuda":
        return torch.device("cuda", gpu_index())
    return torch.device(device)


_GPU_CLAIM: tuple[Any, int] | None = None  # (open lock file, index): held until the process exits


def gpu_index() -> int:
    """The visible GPU this process trains on, so concurrent jobs on one machine use different GPUs.

    LIEGAN_GPU_ID if set; else 0 when one GPU is visible (SLURM's --gpus=1 / --gres=gpu:1 sets
    CUDA_VISIBLE_DEVICES to the job's own GPU); else the first GPU that no other liegan process
    holds, claimed with an exclusive lock on `liegan-gpu<id>.lock` in LIEGAN_GPU_LOCK_DIR (default:
    the temp folder) until this process exits; else, all GPUs taken, one chosen by process id.
    """
    global _GPU_CLAIM
    count = torch.cuda.device_count()
    if os.environ.get("LIEGAN_GPU_ID", "").strip():
        index = int(os.environ["LIEGAN_GPU_ID"])
        if not 0 <= index < count:
            raise RuntimeError(f"LIEGAN_GPU_ID={index}, but {count} GPU(s) are visible")
        return index
    if count <= 1:
        return 0
    if _GPU_CLAIM is not None:
        return _GPU_CLAIM[1]
    import fcntl
    import tempfile

    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    lock_dir = Path(os.environ.get("LIEGAN_GPU_LOCK_DIR") or tempfile.gettempdir())
    for index in range(count):
        physical = visible[index] if index < len(visible) else str(index)
        try:
            lock = open(lock_dir / f"liegan-gpu{physical}.lock", "a")
        except OSError:
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _GPU_CLAIM = (lock, index)
        return index
    return os.getpid() % count


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


def data_tensors(data: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """A dataset's x (float32) and y (int64 labels or float32) on `device`, and whether y is a label."""
    label = data.y_rep["type"] == "label"
    x = torch.as_tensor(data.x, dtype=torch.float32, device=device)
    y = torch.as_tensor(data.y, dtype=torch.long if label else torch.float32, device=device)
    return x, y, label


def vector_inputs_only(data: Any, method: str) -> str | None:
    """A method's skip reason when x is not a vector representation (the common restriction)."""
    kind = data.x_rep["type"]
    return None if kind == "vector" else f"x representation '{kind}' is not supported by this {method} implementation"


def keep_freed_memory(limit_bytes: int = 1 << 30) -> bool:
    """Ask glibc's malloc to keep freed blocks up to `limit_bytes` in the process (Linux only).

    A training step allocates and frees large tensors (activations and gradients, MBs each); by
    default glibc returns such blocks to the operating system and the next step faults the pages
    back in (about a thousand page faults per step for an 8-seed LieGAN ensemble, a few percent of
    its time). Raising the mmap and trim thresholds keeps them for reuse; the process's resident
    memory then stays at its peak until it exits. Returns whether the setting was applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
        return bool(libc.mallopt(m_mmap_threshold, limit_bytes)) and bool(libc.mallopt(m_trim_threshold, limit_bytes))
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return False


def check_finite(name: str, value: torch.Tensor, epoch: int, step: int, generator_norm: float) -> None:
    """Stop with a message naming the quantity, epoch, step and generator norm on NaN/inf."""
    if not bool(torch.isfinite(value).all()):
        raise NumericalError(
            f"non-finite {name} at epoch {epoch}, step {step} (generator norm {generator_norm:.4g}); "
            "lower the learning rate or coefficient scale, or set max_exponent_norm to clip"
        )


def check_finite_per_seed(
    seeds: Sequence[int], quantities: Sequence[tuple[str, torch.Tensor]], norms: Sequence[float], epoch: int, step: int,
) -> None:
    """check_finite on each seed's slice [k] of each quantity [S, ...], in order; raises at the first failure.

    For stacked ensembles after their one-sync probe failed: the message names the seed when
    there are several (a single run's message stays that of check_finite). Returns when nothing
    is non-finite (finite values whose probe sum overflowed), and training goes on.
    """
    for k, seed in enumerate(seeds):
        tag = "" if len(seeds) == 1 else f" (seed {seed})"
        for name, value in quantities:
            check_finite(name + tag, value[k].detach(), epoch, step, float(norms[k]))


def seed_views(params: Sequence[torch.Tensor], members: int) -> list[torch.Tensor]:
    """Each stacked parameter [S, ...] as S leaf tensors [...] sharing its storage, for the optimiser.

    Adam's kernels treat short tensors and tails differently (vector vs scalar code, a last-bit
    difference), so a member's update would otherwise depend on how many are stacked. Ordered
    parameter-major: views[i * members + k] is member k of params[i] (see set_seed_grads).
    """
    return [p.detach()[k] for p in params for k in range(members)]


def set_seed_grads(views: Sequence[torch.Tensor], grads: Sequence[torch.Tensor | None], members: int) -> None:
    """Give each view of `seed_views` its slice of the stacked gradients (one [S, ...] per parameter;
    None for a parameter the loss does not use, which the optimiser then skips)."""
    for i, grad in enumerate(grads):
        for k in range(members):
            views[i * members + k].grad = None if grad is None else grad[k]


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
        # the run's identity: its data-order stream is seeded from the run's seed
        self.stream_seed = int(gen.initial_seed())

    def restore(self) -> tuple[int, list[dict[str, Any]]]:
        """(epochs already done, their log rows); (0, []) when there is nothing to resume.

        A checkpoint written by a run with another seed (a folder reused for another seed) is
        ignored with a message, never resumed: that would silently copy the other run's result.
        """
        state = load_checkpoint(self.path) if self.path else None
        if state is None:
            return 0, []
        if state.get("stream_seed", self.stream_seed) != self.stream_seed:
            print(f"liegan: ignoring {self.path} (written by a run with another seed); starting afresh", file=sys.stderr)
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
        state.update(rng=self.gen.get_state(), torch_rng=torch.get_rng_state(), epoch=epoch, log=log,
                     stream_seed=self.stream_seed)
        save_checkpoint(self.path, state)


def distinct_seeds(seeds: Sequence[int]) -> list[int]:
    """The seed list of a stacked ensemble as ints; ValueError when it is empty or repeats a seed."""
    out = [int(s) for s in seeds]
    if not out or len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct and non-empty, got {out}")
    return out


class EnsembleCheckpointer:
    """Checkpointer for a stacked ensemble of seeds (workdir/checkpoint.pt): the stacked objects,
    every seed's data-order generator, torch's global RNG, the epoch and what the method adds.

    A checkpoint is resumed only when it was written in this `fmt` for the same list of seeds;
    otherwise it is ignored with a message (resuming it would mix two runs' results).
    """

    def __init__(self, workdir: str | None, every: int, fmt: str, seeds: Sequence[int], objects: dict[str, Any],
                 gens: Sequence[torch.Generator], method: str):
        self.path = Path(workdir) / "checkpoint.pt" if workdir else None
        self.every = max(1, int(every))
        self.fmt, self.seeds, self.objects, self.gens, self.method = fmt, list(seeds), objects, gens, method

    def restore(self) -> dict[str, Any] | None:
        """The saved state, after loading it into the objects and generators; None to start afresh."""
        state = load_checkpoint(self.path) if self.path else None
        if state is None:
            return None
        if state.get("format") != self.fmt or state.get("seeds") != self.seeds:
            print(f"{self.method}: ignoring {self.path} (written by another version or for other seeds); "
                  "starting afresh", file=sys.stderr)
            return None
        for name, obj in self.objects.items():
            obj.load_state_dict(state[name])
        for g, st in zip(self.gens, state["rng"]):
            g.set_state(st)
        torch.set_rng_state(state["torch_rng"])
        return state

    def save_if_due(self, epoch: int, total: int, extra: dict[str, Any]) -> None:
        """Save after `epoch` finished epochs when due (every `every` epochs, and the last); `extra`:
        the method's own entries (tensors and plain data, e.g. the logs)."""
        if self.path is None or (epoch % self.every and epoch != total):
            return
        state: dict[str, Any] = {name: obj.state_dict() for name, obj in self.objects.items()}
        state.update(format=self.fmt, seeds=self.seeds, rng=[g.get_state() for g in self.gens],
                     torch_rng=torch.get_rng_state(), epoch=epoch, **extra)
        save_checkpoint(self.path, state)
