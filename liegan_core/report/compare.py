"""Reference results and the reproducibility check: `liegan compare`.

A reference is a snapshot of one run's tables and figures plus an environment record:

  results/reference/<profile>/tables/*       every table `liegan aggregate` wrote (tidy.csv is compared)
  results/reference/<profile>/figures/*      the figures (for reading, not compared)
  results/reference/<profile>/environment.json   code version, package versions, CPU model, threads

`liegan compare --reference DIR --results results` reads both tidy tables and checks every result
row (task, method, model, symmetry, seed, split, metric) against the reference: by default exactly,
which holds for the same seeds on the same software and CPU type; `--rtol`/`--atol` allow float
differences from other BLAS kernels, thread counts or a GPU (docs/reproducibility.md). It prints a
table per metric, then each differing seed, and exits 1 on any difference or missing row. A
different configuration (config hash) is a difference; a different code version, package version,
CPU model or thread count is reported as a warning, as are rows the reference does not have.
`liegan compare --snapshot` writes a reference from a finished run instead.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import UserError
from ..io import write_json
from .aggregate import KEY_COLUMNS, SUMMARY_KEYS, read_tidy

ENVIRONMENT_FILE = "environment.json"
TIDY = Path("tables") / "tidy.csv"


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else platform.processor())."""
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def run_profile(results_dir: Path) -> str | None:
    """The profile name a pipeline run used, from its resolved configs (results/config/<task>.json)."""
    for path in sorted((results_dir / "config").glob("*.json")):
        profile = json.loads(path.read_text()).get("_profile", {}).get("profile")
        if profile:
            return str(profile)
    return None


def run_records(results_dir: Path) -> list[dict[str, Any]]:
    """The metrics.json of every run under results_dir/runs (any stage)."""
    return [json.loads(p.read_text()) for p in sorted((results_dir / "runs").glob("**/metrics.json"))]


def environment(results_dir: Path) -> dict[str, Any]:
    """What a run's numbers depend on beyond seeds and config, for environment.json.

    code_versions and package_versions come from the runs' metrics.json (what the runs used; the
    current interpreter's versions when no run folders exist); the CPU model, core count, torch's
    default thread count and the thread environment variables describe this machine.
    """
    import torch

    from ..runner import code_version, package_versions

    records = run_records(results_dir)
    versions: dict[str, set[str]] = {}
    for rec in records:
        for name, version in rec.get("versions", {}).items():
            versions.setdefault(name, set()).add(str(version))
    return {
        "profile": run_profile(results_dir),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "code_versions": sorted({str(r["code_version"]) for r in records}) or [code_version()],
        "package_versions": ({k: ", ".join(sorted(v)) for k, v in sorted(versions.items())}
                             or package_versions()),
        "devices": sorted({str(r.get("device", "")) for r in records}),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "thread_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
                       if k in os.environ},
        "platform": platform.platform(),
    }


def snapshot_reference(results_dir: str | Path, dest: str | Path) -> Path:
    """Copy results_dir/tables and results_dir/figures into dest, with dest/environment.json.

    dest is replaced as a whole (built in a temporary folder beside it, then renamed), so a
    reference never mixes files of two runs. Returns dest.
    """
    results_dir, dest = Path(results_dir), Path(dest)
    if not (results_dir / TIDY).exists():
        raise UserError(f"{results_dir / TIDY}: not found; run `liegan aggregate` (or the pipeline) first")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        for sub in ("tables", "figures"):
            if (results_dir / sub).exists():
                shutil.copytree(results_dir / sub, tmp / sub, ignore=shutil.ignore_patterns(".*"))
        write_json(tmp / ENVIRONMENT_FILE, environment(results_dir))
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return dest


@dataclass
class Comparison:
    """The outcome of comparing a run's tidy rows with a reference's.

    per_metric: one row per (task, method, model, symmetry, split, metric) with the seeds compared,
    the largest absolute difference and a status; differences: one line per differing or missing
    row naming task, method, metric and seed; warnings: what differs without failing the check.
    """

    per_metric: pd.DataFrame
    differences: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rtol: float = 0.0
    atol: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.differences

    def report(self) -> str:
        """The printed report: tolerance, per-metric table, differences, warnings, verdict."""
        tol = "exact" if self.rtol == 0 and self.atol == 0 else f"rtol={self.rtol:g}, atol={self.atol:g}"
        lines = [f"Comparison with the reference ({tol}):", "",
                 self.per_metric.to_string(index=False) if len(self.per_metric) else "(no rows)", ""]
        lines += [f"DIFFERENT {d}" for d in self.differences]
        lines += [f"warning: {w}" for w in self.warnings]
        n_match = int((self.per_metric.status == "match").sum())
        lines.append(f"{'OK' if self.ok else 'MISMATCH'}: {n_match} of {len(self.per_metric)} metrics match exactly "
                     f"or within tolerance; {len(self.differences)} differing or missing rows")
        return "\n".join(lines) + "\n"


STATUS_WORDS = {"missing": "missing", "config": "config differs", "value": "different", "extra": "extra"}


def _label(row: Any) -> str:
    """'task / method / metric seed k (model m, symmetry s, split p)' for one result row."""
    extra = ", ".join(f"{k} {getattr(row, k)}" for k in ("model", "symmetry", "split") if getattr(row, k))
    return f"{row.task} / {row.method or '-'} / {row.metric} seed {row.seed}" + (f" ({extra})" if extra else "")


def compare_tidy(reference: pd.DataFrame, results: pd.DataFrame, rtol: float = 0.0, atol: float = 0.0) -> Comparison:
    """Compare two tidy tables row by row on KEY_COLUMNS.

    A row matches when both values are NaN or |results - reference| <= atol + rtol * |reference|,
    and both rows come from the same config hash. Rows of the reference missing from the results
    are differences; rows only in the results are warnings.
    """
    merged = reference.merge(results, on=KEY_COLUMNS, how="outer", suffixes=("_ref", "_new"), indicator=True)
    merged = merged.sort_values(KEY_COLUMNS, kind="stable").reset_index(drop=True)
    both = merged["_merge"] == "both"
    a, b = merged.value_ref.to_numpy(float), merged.value_new.to_numpy(float)
    close = (np.isnan(a) & np.isnan(b)) | (np.abs(b - a) <= atol + rtol * np.abs(a))
    same_config = merged.config_hash_ref.astype(str) == merged.config_hash_new.astype(str)
    merged["abs_diff"] = np.where(both, np.abs(b - a), np.nan)
    merged["state"] = np.select(
        [merged["_merge"] == "left_only", merged["_merge"] == "right_only", both & ~same_config, both & ~close],
        ["missing", "extra", "config", "value"], default="match")

    differences, warnings = [], []
    for r in merged[merged.state.isin(["missing", "value", "config"])].itertuples(index=False):
        if r.state == "missing":
            differences.append(f"{_label(r)}: in the reference ({r.value_ref!r}) but missing from the results")
        elif r.state == "config":
            differences.append(f"{_label(r)}: different config (hash {r.config_hash_ref} in the reference, "
                               f"{r.config_hash_new} in the results)")
        else:
            differences.append(f"{_label(r)}: reference {r.value_ref!r} vs results {r.value_new!r} "
                               f"(|diff| {r.abs_diff:.3g})")
    extra = merged[merged.state == "extra"]
    if len(extra):
        warnings.append(f"{len(extra)} result rows are not in the reference, e.g. {_label(extra.iloc[0])}")
    ref_code, new_code = set(reference.code_version.astype(str)), set(results.code_version.astype(str))
    if ref_code != new_code:
        warnings.append(f"code version differs: reference {sorted(ref_code)}, results {sorted(new_code)}")

    per_metric = []
    for keys, grp in merged.groupby(SUMMARY_KEYS, sort=True):
        states = [st for st in STATUS_WORDS if st in set(grp.state)]
        status = ", ".join(STATUS_WORDS[st] for st in states) if states else "match"
        per_metric.append({**dict(zip(SUMMARY_KEYS, keys)), "seeds": ",".join(str(s) for s in grp.seed),
                           "max_abs_diff": grp.abs_diff.max() if grp.abs_diff.notna().any() else float("nan"),
                           "status": status})
    table = pd.DataFrame(per_metric, columns=[*SUMMARY_KEYS, "seeds", "max_abs_diff", "status"])
    return Comparison(table, differences, warnings, rtol, atol)


def environment_warnings(reference_env: dict[str, Any], current_env: dict[str, Any]) -> list[str]:
    """What differs between two environment.json records that can change floating-point results."""
    out = []
    ref_pkgs, cur_pkgs = reference_env.get("package_versions", {}), current_env.get("package_versions", {})
    changed = sorted(k for k in set(ref_pkgs) | set(cur_pkgs) if ref_pkgs.get(k) != cur_pkgs.get(k))
    if changed:
        out.append("package versions differ: " + ", ".join(
            f"{k} {ref_pkgs.get(k, 'absent')} -> {cur_pkgs.get(k, 'absent')}" for k in changed))
    for key, what in (("cpu_model", "CPU model"), ("torch_threads", "torch thread count"),
                      ("thread_env", "thread environment variables"), ("devices", "devices")):
        if reference_env.get(key) != current_env.get(key):
            out.append(f"{what} differs: reference {reference_env.get(key)!r}, now {current_env.get(key)!r}")
    return out


def compare(reference_dir: str | Path, results_dir: str | Path, rtol: float = 0.0, atol: float = 0.0) -> Comparison:
    """Compare results_dir/tables/tidy.csv with reference_dir's, adding environment warnings."""
    reference_dir, results_dir = Path(reference_dir), Path(results_dir)
    for path in (reference_dir / TIDY, results_dir / TIDY):
        if not path.exists():
            raise UserError(f"{path}: not found (a reference is made with `liegan compare --snapshot`; "
                            "results with `liegan aggregate`)")
    result = compare_tidy(read_tidy(reference_dir / TIDY), read_tidy(results_dir / TIDY), rtol, atol)
    env_path = reference_dir / ENVIRONMENT_FILE
    if env_path.exists():
        result.warnings += environment_warnings(json.loads(env_path.read_text()), environment(results_dir))
    else:
        result.warnings.append(f"{env_path}: not found; environment not compared")
    return result


def cmd_compare(args: argparse.Namespace) -> None:
    """`liegan compare`: check a run against a reference, or write one with --snapshot."""
    results_dir = Path(args.results)
    reference = args.reference
    if reference is None:
        profile = run_profile(results_dir)
        if profile is None:
            raise UserError(f"{results_dir / 'config'}: cannot tell which profile the run used; pass --reference")
        reference = results_dir / "reference" / profile
    if args.snapshot:
        dest = snapshot_reference(results_dir, reference)
        print(f"reference written to {dest}", file=sys.stderr)
        return
    result = compare(reference, results_dir, args.rtol, args.atol)
    print(result.report())
    if not result.ok:
        raise SystemExit(1)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `compare` subcommand to the `liegan` command's subparsers (cli.build_parser's `sub`)."""
    p = subparsers.add_parser(
        "compare", help="check a run's results against a reference (exit 1 on a difference), or --snapshot one",
        description="Compare results/tables/tidy.csv with a reference's, metric by metric and seed by seed.")
    p.add_argument("--reference", help="reference folder (default: RESULTS/reference/<the run's profile>)")
    p.add_argument("--results", default="results", help="results folder of the run to check (default results)")
    p.add_argument("--rtol", type=float, default=0.0,
                   help="relative tolerance (default 0: exact, for the same software and CPU type)")
    p.add_argument("--atol", type=float, default=0.0, help="absolute tolerance (default 0)")
    p.add_argument("--snapshot", action="store_true",
                   help="write the reference from the results (tables, figures, environment.json) instead")
    p.set_defaults(func=cmd_compare)
    return p
