"""Collect finished runs into tidy tables, summaries over seeds, and figures.

Every number in a table or figure comes from a run's metrics.json; nothing is typed in.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..io import write_text
from .stats import summarise

TIDY_COLUMNS = ["task", "method", "model", "symmetry", "seed", "split", "metric", "value",
                "run_seconds", "peak_memory_mb", "config_hash", "code_version"]


def collect_discovery(runs_dir: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Tidy rows of every finished discovery run under runs_dir/<task>/discover/<method>/seed<k>/."""
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    for path in sorted(runs_dir.glob("*/discover/*/seed*/metrics.json")):
        res = json.loads(path.read_text())
        res["path"] = str(path.parent)
        runs.append(res)
        for r in res["rows"]:
            rows.append({**r, "run_seconds": res["run_seconds"], "peak_memory_mb": res["peak_memory_mb"],
                         "config_hash": res["config_hash"], "code_version": res["code_version"]})
    return pd.DataFrame(rows, columns=TIDY_COLUMNS), runs


def summary_table(tidy: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per (task, method, metric): statistics over seeds, plus run time."""
    out = []
    for (task, method, metric), grp in tidy[tidy.metric.isin(metrics)].groupby(["task", "method", "metric"], sort=True):
        s = summarise(grp.sort_values("seed").value.to_numpy())
        out.append({"task": task, "method": method, "metric": metric, **s,
                    "seeds": ",".join(str(x) for x in sorted(grp.seed)),
                    "run_seconds_mean": float(grp.run_seconds.mean())})
    return pd.DataFrame(out)


def markdown_table(summary: pd.DataFrame, digits: int = 4) -> str:
    """Markdown view: mean +- std [95% CI] per task/method/metric."""
    if summary.empty:
        return "_no finished runs_\n"
    lines = ["| task | method | metric | n | mean ± std | 95% CI | median | IQM | time/run (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    f = f"{{:.{digits}f}}"
    for r in summary.itertuples():
        lines.append(
            f"| {r.task} | {r.method} | {r.metric} | {r.n} | {f.format(r.mean)} ± {f.format(r.std)} | "
            f"[{f.format(r.ci_low)}, {f.format(r.ci_high)}] | {f.format(r.median)} | {f.format(r.iqm)} | "
            f"{r.run_seconds_mean:.1f} |"
        )
    return "\n".join(lines) + "\n"


def aggregate(runs_dir: Path, out_dir: Path, data_dir: Path | None = None) -> None:
    """Write tables/discovery.{csv,md}, tables/discovery_summary.csv and the discovery figures."""
    tidy, runs = collect_discovery(runs_dir)
    if tidy.empty:
        raise SystemExit(f"no finished runs under {runs_dir}")
    tables = out_dir / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    write_text(tables / "discovery.csv", tidy.to_csv(index=False))
    summary = summary_table(tidy, ["algebra_similarity", "mean_cos2", "worst_angle_deg", "closure_error"])
    write_text(tables / "discovery_summary.csv", summary.to_csv(index=False))
    header = ("# Discovery results\n\nSimilarity of the learned Lie algebra to the true one over seeds "
              "(|cos| for a one-dimensional truth, mean cos² of principal angles otherwise); "
              "95% percentile bootstrap interval over seeds.\n\n")
    write_text(tables / "discovery.md", header + markdown_table(summary))
    from .figures import discovery_figures

    discovery_figures(tidy, runs, out_dir / "figures", data_dir or out_dir / "data")
    print(f"tables in {tables}, figures in {out_dir / 'figures'}", file=sys.stderr)
    print(markdown_table(summary[summary.metric == "algebra_similarity"]), file=sys.stderr)
