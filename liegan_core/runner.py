"""Run one discovery (task x method x seed) and write its outputs atomically.

Outputs in the run folder: generators.npz (array `generators` [c, n, n], the effective basis),
metrics.json (tidy result rows plus provenance), log.csv (one row per epoch). metrics.json is
written last, so its presence marks a finished run.
"""
from __future__ import annotations

import platform
import resource
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .data.dataset import Dataset
from .io import config_hash, write_json, write_npz, write_text
from .lie import algebra_similarity, closure_error, lorentz_channel_types, rotation_angle_deg
from .methods import Budget, Discovery, RunContext, SearchSpace, get_method


def code_version() -> str:
    """git commit of the source tree (with '-dirty' when modified), else the package version."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if rev.returncode == 0:
            dirty = subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "liegan_core"],
                capture_output=True, text=True, timeout=5,
            ).stdout.strip()
            return rev.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__


def package_versions() -> dict[str, str]:
    import pandas
    import scipy
    import torch

    return {
        "liegan_core": __version__, "python": platform.python_version(), "numpy": np.__version__,
        "scipy": scipy.__version__, "pandas": pandas.__version__, "torch": torch.__version__,
    }


def peak_memory_mb() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def discovery_metrics(generators: np.ndarray, truth: np.ndarray | None) -> dict[str, float]:
    """Metrics of a learned generator set; similarity only where a truth exists and something was learned."""
    out: dict[str, float] = {"closure_error": closure_error(generators) if generators.shape[0] else 0.0}
    # a channel that collapsed to (near) zero has a direction of pure noise, so its similarity means
    # nothing: the smallest channel norm shows it beside the similarity
    out["min_generator_norm"] = float(np.linalg.norm(generators, axis=(1, 2)).min()) if generators.shape[0] else 0.0
    if truth is not None:
        if generators.shape[0]:
            out.update(algebra_similarity(generators, truth))
        else:
            out.update(algebra_similarity=0.0, mean_cos2=0.0, worst_angle_deg=90.0)
    return out


def task_truths(cfg: dict[str, Any], dataset: Dataset) -> tuple[str, np.ndarray | None, np.ndarray | None]:
    """(which symmetry scores are measured against, that algebra, the function's algebra if different).

    Most tasks' data and function share one symmetry (the dataset's true_algebra). Where the
    task YAML says `measured_against: data` and names a `data_algebra`, the score is against it.
    """
    sym = cfg.get("symmetry") or {}
    against = sym.get("measured_against", "data")
    if against == "data" and sym.get("data_algebra"):
        from .data.synthetic import data_algebra

        return "data", data_algebra(sym["data_algebra"]), dataset.true_algebra
    return against, dataset.true_algebra, None


def task_specific_metrics(cfg: dict[str, Any], generators: np.ndarray) -> dict[str, float]:
    """Extra checks some tasks ask for: channel types for Lorentz searches, angles for discrete steps."""
    out: dict[str, float] = {}
    sym = cfg.get("symmetry") or {}
    if generators.shape[0] and generators.shape[-1] == 4 and "SO(1,3)" in str(sym.get("function", "")):
        kinds = lorentz_channel_types(generators)
        out["n_boost_channels"] = float(kinds.count("boost"))
        out["n_rotation_channels"] = float(kinds.count("rotation"))
        out["n_mixed_channels"] = float(kinds.count("mixed"))
    step = sym.get("discrete_step")
    if step and generators.shape[0]:
        angle = rotation_angle_deg(generators[0])
        unit = float(np.degrees(step))
        nearest = round(angle / unit)
        out["recovered_angle_deg"] = angle
        out["angle_error_to_step_multiple_deg"] = abs(angle - nearest * unit) if nearest else angle
    return out


def log_csv(log: list[dict[str, Any]]) -> str:
    if not log:
        return "epoch\n"
    keys = list(log[0].keys())
    lines = [",".join(keys)] + [",".join(repr(float(r[k])) if not isinstance(r[k], int) else str(r[k]) for k in keys) for r in log]
    return "\n".join(lines) + "\n"


def _prepare(cfg: dict[str, Any], method_name: str, dataset: Dataset, truth: np.ndarray | None) -> dict[str, Any]:
    """What every run of `method_name` on this task needs: the method, search space, budget, truths, data."""
    method = get_method(method_name)
    space = SearchSpace.from_config(cfg["search_space"])
    params = dict(cfg["methods"].get(method_name) or {})
    budget = Budget(epochs=int(params.pop("epochs", 1)), batch_size=int(params.pop("batch_size", 64)))
    against, task_truth, function_truth = task_truths(cfg, dataset)
    truth = task_truth if truth is None else truth
    train = dataset.split("train")
    reason = method.skip(train, space)
    if reason:
        raise SystemExit(f"method '{method_name}' cannot run task '{cfg['task']}': {reason}")
    if method_name == "oracle":
        params["true_algebra"] = truth
    return {"method": method, "space": space, "params": params, "budget": budget, "against": against,
            "truth": truth, "function_truth": function_truth, "train": train}


def _write_run(
    cfg: dict[str, Any], method_name: str, seed: int, disc: Discovery, seconds: float, out_dir: Path,
    ctx: RunContext, prep: dict[str, Any], ensemble_size: int = 1,
) -> dict[str, Any]:
    """Score one seed's Discovery and write its run folder (metrics.json last); returns metrics.json's content."""
    space, truth, function_truth = prep["space"], prep["truth"], prep["function_truth"]
    out_dir.mkdir(parents=True, exist_ok=True)
    gens = np.asarray(disc.generators, dtype=np.float64)
    if gens.ndim != 3 or gens.shape[1:] != (space.n, space.n):
        raise ValueError(f"method '{method_name}' returned generators of shape {gens.shape}, expected [c, {space.n}, {space.n}]")
    metrics = discovery_metrics(gens, truth)
    if function_truth is not None and gens.shape[0]:
        metrics["algebra_similarity_to_function_symmetry"] = algebra_similarity(gens, function_truth)["algebra_similarity"]
    metrics.update(task_specific_metrics(cfg, gens))
    metrics.update({k: float(v) for k, v in disc.info.items() if np.isscalar(v)})
    extra_arrays = {k: np.asarray(v) for k, v in disc.info.items() if not np.isscalar(v)}
    write_npz(out_dir / "generators.npz", generators=gens, **extra_arrays)
    write_text(out_dir / "log.csv", log_csv(disc.log))
    run_cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
    rows = [
        {"task": cfg["task"], "method": method_name, "model": "", "symmetry": prep["against"], "seed": seed,
         "split": "train", "metric": k, "value": v}
        for k, v in metrics.items()
    ]
    result = {
        "rows": rows,
        "task": cfg["task"],
        "method": method_name,
        "seed": seed,
        "run_seconds": seconds,
        "ensemble_size": ensemble_size,
        "peak_memory_mb": peak_memory_mb(),
        "config_hash": config_hash({"task": run_cfg, "method": method_name, "seed": seed}),
        "code_version": code_version(),
        "versions": package_versions(),
        "device": ctx.device,
        "coefficient_distribution": disc.coefficient_distribution,
        "generators_rounded": np.round(gens, 4).tolist(),
    }
    write_json(out_dir / "metrics.json", result)
    return result


def run_discovery(
    cfg: dict[str, Any], method_name: str, seed: int, dataset: Dataset, out_dir: str | Path, ctx: RunContext,
    truth: np.ndarray | None = None,
) -> dict[str, Any]:
    """Fit `method_name` on the training split and write the run folder; returns metrics.json's content."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx.workdir = str(out_dir)
    prep = _prepare(cfg, method_name, dataset, truth)
    t0 = time.perf_counter()
    disc = prep["method"].fit(prep["train"], prep["space"], prep["budget"], seed, prep["params"], ctx)
    return _write_run(cfg, method_name, seed, disc, time.perf_counter() - t0, out_dir, ctx, prep)


def run_discoveries(
    cfg: dict[str, Any], method_name: str, seeds: list[int], dataset: Dataset, out_root: str | Path, ctx: RunContext,
) -> list[dict[str, Any]]:
    """Several seeds in this process, each written to out_root/seed<k> exactly as run_discovery would.

    A method with a `fit_seeds` (LieGAN, SymmetryGAN, Augerino: one batched ensemble, see
    Method.fit_seeds) trains the seeds together; other methods run the seeds in turn. Either way
    the pipeline pays one process start (~2.5 s of imports) per task and method, not per seed.
    An ensemble's run_seconds is its wall time divided by the number of seeds (ensemble_size
    in metrics.json says so); its checkpoint (out_root/checkpoint.pt) holds all seeds.
    """
    out_root = Path(out_root)
    batched = getattr(get_method(method_name), "fit_seeds", None)
    if batched is None or len(seeds) == 1:
        return [run_discovery(cfg, method_name, s, dataset, out_root / f"seed{s}", ctx) for s in seeds]
    out_root.mkdir(parents=True, exist_ok=True)
    ctx.workdir = str(out_root)
    prep = _prepare(cfg, method_name, dataset, None)
    t0 = time.perf_counter()
    discs = prep["method"].fit_seeds(prep["train"], prep["space"], prep["budget"], seeds, prep["params"], ctx)
    per_seed = (time.perf_counter() - t0) / len(seeds)
    return [_write_run(cfg, method_name, s, d, per_seed, out_root / f"seed{s}", ctx, prep, len(seeds))
            for s, d in zip(seeds, discs)]
