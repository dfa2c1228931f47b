"""Performance reporting: where a pipeline run's time went, machine facts, analytic FLOP counts.

* `aggregate_jobs(bench_dir, out_dir)` reads the Snakemake `benchmark:` TSV files under
  bench_dir (results/benchmarks/<rule>/<wildcards...>.tsv, one row per job or per repeat) and
  writes out_dir/jobs.csv (one row per job) and out_dir/jobs.md (jobs by wall time, then totals
  per rule). Called by benchmarks/perf/run.py and by the `perf_jobs` rule (workflow/rules/perf.smk).
* `machine_info()`: CPU model, logical CPUs, torch threads, library versions (recorded beside
  every performance result).
* `flops_per_step(...)`: floating-point operations of one training step, counted analytically
  from the linear layers (a forward pass through a [rows, in] x [in, out] layer is 2*rows*in*out).
"""
from __future__ import annotations

import json
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..io import write_text
from .tables import Table

JOB_COLUMNS = ["rule", "job", "task", "method", "seed", "repeat", "seconds", "cpu_seconds", "cores_used",
               "max_rss_mb", "max_uss_mb", "io_in_mb", "io_out_mb", "file"]


def _wildcards(rule: str, parts: Sequence[str]) -> dict[str, Any]:
    """task / method / seed from a benchmark path such as discover/<task>/<method>/seed<k>."""
    out: dict[str, Any] = {"task": "", "method": "", "seed": np.nan}
    names = list(parts)
    for i, part in enumerate(names):
        m = re.fullmatch(r"seed(\d+)", part)
        if m:
            out["seed"] = int(m.group(1))
            names = names[:i] + names[i + 1:]
            break
    if names:
        out["task"] = names[0]
    if len(names) > 1 and rule in ("discover", "downstream"):
        out["method"] = names[1]
    return out


def read_benchmark_tsvs(bench_dir: str | Path) -> pd.DataFrame:
    """All Snakemake benchmark TSVs under bench_dir as one table (columns JOB_COLUMNS), longest first.

    A job's values are Snakemake's own measurements: wall seconds (`s`), CPU seconds of the job's
    processes (`cpu_time`), peak resident and unique memory (`max_rss`, `max_uss`, MB), I/O (MB).
    Missing values (Snakemake writes NA for jobs shorter than its sampling interval) stay NaN.
    """
    bench_dir = Path(bench_dir)
    rows: list[dict[str, Any]] = []
    for path in sorted(bench_dir.rglob("*.tsv")):
        rel = path.relative_to(bench_dir).with_suffix("")
        parts = rel.parts
        rule = parts[0] if len(parts) > 1 else ""
        try:
            table = pd.read_csv(path, sep="\t", na_values=["NA", "-", ""])
        except (pd.errors.EmptyDataError, pd.errors.ParserError) as err:
            print(f"perf: skipping unreadable benchmark file {path}: {err}", file=sys.stderr)
            continue
        for i, rec in enumerate(table.to_dict("records")):
            seconds = float(rec.get("s", np.nan))
            cpu = float(rec.get("cpu_time", np.nan))
            rows.append({
                "rule": rule or str(rec.get("rule_name", "")),
                "job": "/".join(parts[1:]) if rule else "/".join(parts),
                **_wildcards(rule, parts[1:]),
                "repeat": i,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "cores_used": cpu / seconds if seconds and seconds > 0 else np.nan,
                "max_rss_mb": float(rec.get("max_rss", np.nan)),
                "max_uss_mb": float(rec.get("max_uss", np.nan)),
                "io_in_mb": float(rec.get("io_in", np.nan)),
                "io_out_mb": float(rec.get("io_out", np.nan)),
                "file": str(path),
            })
    df = pd.DataFrame(rows, columns=JOB_COLUMNS)
    df["seed"] = df["seed"].astype("Int64")
    return df.sort_values("seconds", ascending=False, na_position="last").reset_index(drop=True)


def rule_totals(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per rule: jobs, wall seconds (sum, share of all jobs' sum, mean, max), CPU seconds, peak memory."""
    if jobs.empty:
        return pd.DataFrame(columns=["rule", "jobs", "seconds", "share", "mean_seconds", "max_seconds",
                                     "cpu_seconds", "max_rss_mb"])
    g = jobs.groupby("rule", sort=False)
    out = pd.DataFrame({
        "jobs": g.size(),
        "seconds": g["seconds"].sum(),
        "mean_seconds": g["seconds"].mean(),
        "max_seconds": g["seconds"].max(),
        "cpu_seconds": g["cpu_seconds"].sum(),
        "max_rss_mb": g["max_rss_mb"].max(),
    }).reset_index()
    total = out["seconds"].sum()
    out.insert(3, "share", out["seconds"] / total if total > 0 else np.nan)
    return out.sort_values("seconds", ascending=False).reset_index(drop=True)


def _fmt(v: Any, digits: int = 1) -> str:
    if isinstance(v, (float, np.floating)):
        return "-" if not np.isfinite(v) else f"{v:.{digits}f}"
    return str(v)


def jobs_markdown(jobs: pd.DataFrame, top: int = 30) -> str:
    """Markdown: totals per rule, then the longest jobs."""
    totals = rule_totals(jobs)
    cells = pd.DataFrame({
        "rule": totals["rule"], "jobs": totals["jobs"].astype(str),
        "wall s (sum)": [_fmt(v) for v in totals["seconds"]],
        "share": [_fmt(100 * v, 0) + " %" if np.isfinite(v) else "-" for v in totals["share"]],
        "mean s": [_fmt(v) for v in totals["mean_seconds"]], "max s": [_fmt(v) for v in totals["max_seconds"]],
        "CPU s (sum)": [_fmt(v) for v in totals["cpu_seconds"]], "peak RSS MB": [_fmt(v, 0) for v in totals["max_rss_mb"]],
    })
    note = ("From Snakemake's `benchmark:` files. Jobs can run at the same time, so the sum of their wall "
            f"times exceeds the pipeline's wall time. {len(jobs)} job records, {_fmt(jobs['seconds'].sum())} s in all.")
    parts = [Table(cells, pd.DataFrame(False, index=cells.index, columns=cells.columns),
                   "Where the pipeline's time went (per rule)", note).markdown()]
    head = jobs.head(top)
    cells = pd.DataFrame({
        "rule": head["rule"], "job": head["job"], "wall s": [_fmt(v) for v in head["seconds"]],
        "CPU s": [_fmt(v) for v in head["cpu_seconds"]], "cores used": [_fmt(v, 2) for v in head["cores_used"]],
        "peak RSS MB": [_fmt(v, 0) for v in head["max_rss_mb"]],
    })
    parts.append(Table(cells, pd.DataFrame(False, index=cells.index, columns=cells.columns),
                       f"Longest jobs (top {min(top, len(jobs))} of {len(jobs)})",
                       "cores used = CPU seconds / wall seconds. CPU seconds come from Snakemake sampling a "
                       "job's processes now and then, so the time after the last sample is missed and jobs of "
                       "under a minute or so are undercounted; wall seconds are exact.").markdown())
    return "\n".join(parts)


def aggregate_jobs(bench_dir: str | Path, out_dir: str | Path) -> pd.DataFrame:
    """Write out_dir/jobs.csv and out_dir/jobs.md from the benchmark TSVs under bench_dir; return the table."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = read_benchmark_tsvs(bench_dir)
    write_text(out_dir / "jobs.csv", jobs.to_csv(index=False))
    write_text(out_dir / "jobs.md", jobs_markdown(jobs))
    return jobs


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else platform.processor())."""
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Facts that decide the speed of a run, recorded beside performance results."""
    import torch

    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "cpus_available": affinity,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "load_average_1_5_15": list(load) if load else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "cuda_available": torch.cuda.is_available(),
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "LIEGAN_THREADS",
                                               "OMP_WAIT_POLICY") if os.environ.get(k)},
    }
    try:
        info["torch_parallel"] = torch.__config__.parallel_info().strip().splitlines()[:6]
    except Exception:  # noqa: BLE001 - informational only
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write_machine_info(path: str | Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    info = {**machine_info(), **(extra or {})}
    write_text(path, json.dumps(info, indent=1, sort_keys=True) + "\n")
    return info


def mlp_forward_flops(sizes: Sequence[int], rows: int) -> float:
    """FLOPs of a forward pass of an MLP with layer widths `sizes` over `rows` rows (2*rows*in*out per layer)."""
    return float(sum(2 * rows * a * b for a, b in zip(sizes[:-1], sizes[1:])))


def flops_per_step(method: str, sizes: Sequence[int], batch: int, channels: int = 1,
                   implementation: str = "algorithm", label_input: bool = False) -> float:
    """Analytic FLOPs of one training step of `method` whose network has layer widths `sizes`.

    GANs (liegan, symmetrygan; `sizes` = discriminator [in, hidden..., 1]), counted as the
    published procedure does the work ("algorithm"): the generator step is a discriminator forward
    pass over the B transformed pairs plus the backward pass to its inputs (one product per layer,
    as large as the forward); the discriminator step is a forward and a backward pass (twice the
    forward: weight and input gradients) over 2B pairs: 2 F(B) + 3 F(2B) = 8 F(B). SymmetryGAN
    does this once per channel.

    implementation="executed" counts what liegan.train_liegan and symmetrygan.train_symmetrygan
    compute (nets.StackedDiscriminator.gan_step, once per channel for SymmetryGAN):
    one forward over 2B rows, the weight gradients over 2B rows, one input-gradient product per
    hidden-to-hidden layer over 2B rows (shared by both losses) and the first layer's input
    gradient over the B fake rows (over all 2B rows when y is a class label, for its embedding).

    Predictor methods (augerino, liegg; `sizes` = predictor): forward plus a backward of twice the
    forward over B rows. The group action, exp and regularisers are O(B n^2) and are not counted.
    """
    f = mlp_forward_flops(sizes, batch)
    per_channel = channels if method == "symmetrygan" else 1
    if method in ("liegan", "symmetrygan") and implementation == "executed":
        rows = 2 * batch
        hidden_to_hidden = sum(2 * rows * a * b for a, b in zip(sizes[1:-2], sizes[2:-1]))
        first_input = 2 * (rows if label_input else batch) * sizes[0] * sizes[1] if len(sizes) > 2 else 0
        return (2 * f + 2 * f + hidden_to_hidden + first_input) * per_channel
    if method in ("liegan", "symmetrygan"):
        return 8 * f * per_channel
    if method in ("augerino", "liegg"):
        return 3 * f
    return 0.0
