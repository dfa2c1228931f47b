"""Downstream regression results: tidy table, summaries over seeds, the paper-layout markdown, figures.

Reads every finished run under runs/<task>/downstream/<model>/<symmetry>/seed<k>/metrics.json whose
model is a regression model (mlp, augment, emlp; top-tagging runs are reported elsewhere) and writes

  tables/downstream.csv          the tidy rows (plus run time, memory, config hash, code version)
  tables/downstream_summary.csv  mean, std, median, IQM and 95% bootstrap interval over seeds
  tables/downstream.md           per task: test MSE per condition and split, and the sample-efficiency table
  figures/downstream_<task>.png|pdf          test MSE per condition and split (log scale, 95% CI)
  figures/sample_efficiency_<task>.png|pdf   test MSE against the fraction of training orbits
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..downstream import MODELS, SPLITS
from ..io import write_text
from .aggregate import TIDY_COLUMNS
from .stats import summarise

GROUP = ["task", "model", "symmetry", "split", "metric"]
SOURCE_ORDER = {"none": 0, "true": 2, "wrong": 3}  # learned sources (1) between none and true


def condition(model: str, symmetry: str) -> str:
    """Label of a (model, symmetry source) pair: 'mlp', 'emlp (true)', 'augment (liegan)'."""
    return model if symmetry == "none" else f"{model} ({symmetry})"


def condition_key(model: str, symmetry: str) -> tuple[int, int, str]:
    """Sort key: models in MODELS order; per model none, learned methods, true, wrong."""
    return MODELS.index(model), SOURCE_ORDER.get(symmetry, 1), symmetry


def collect_downstream(runs_dir: Path) -> pd.DataFrame:
    """Tidy rows [rows x TIDY_COLUMNS] of every finished regression downstream run under runs_dir."""
    rows: list[dict[str, Any]] = []
    for path in sorted(runs_dir.glob("*/downstream/*/*/seed*/metrics.json")):
        res = json.loads(path.read_text())
        if res.get("model") not in MODELS:
            continue
        extra = {k: res[k] for k in ("run_seconds", "peak_memory_mb", "config_hash", "code_version")}
        rows.extend({**r, **extra} for r in res["rows"])
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)


def fraction_of(split: str) -> float:
    """The train fraction of a 'test@frac<f>' split."""
    return float(split.split("@frac", 1)[1])


def summary_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, model, symmetry, split, metric): statistics over seeds, the condition label
    and, for sample-efficiency splits, the train fraction (NaN otherwise)."""
    out = []
    for key, grp in tidy.groupby(GROUP, sort=False, dropna=False):
        stats = summarise(grp.sort_values("seed").value.to_numpy())
        task, model, symmetry, split, metric = key
        split = "" if pd.isna(split) else str(split)
        out.append({**dict(zip(GROUP, (task, model, symmetry, split, metric))), **stats,
                    "condition": condition(model, symmetry),
                    "train_fraction": fraction_of(split) if "@frac" in split else np.nan,
                    "seeds": ",".join(str(s) for s in sorted(grp.seed)),
                    "run_seconds_mean": float(grp.run_seconds.mean())})
    summary = pd.DataFrame(out)
    order = summary.apply(lambda r: condition_key(r.model, r.symmetry), axis=1)
    return summary.assign(_order=order).sort_values(["task", "_order", "split", "metric"]).drop(columns="_order")


def _cell(r: Any) -> str:
    return f"{r.mean:.3g} [{r.ci_low:.3g}, {r.ci_high:.3g}]"


def _pivot_markdown(sub: pd.DataFrame, columns: list[str], header: list[str]) -> list[str]:
    """Markdown rows: one per condition (in condition order), one cell per column of `columns` (split names)."""
    lines = ["| condition | n | " + " | ".join(header) + " |", "|---|---|" + "---|" * len(columns)]
    for cond, grp in sub.groupby("condition", sort=False):
        cells = {r.split: _cell(r) for r in grp.itertuples()}
        lines.append(f"| {cond} | {int(grp.n.max())} | " + " | ".join(cells.get(c, "–") for c in columns) + " |")
    return lines


def markdown_report(summary: pd.DataFrame) -> str:
    """Per task: test MSE per condition x split, and per condition x train fraction; mean [95% CI] over seeds."""
    lines = ["# Downstream results", "",
             "Test mean squared error per predicted number, in the data's units, mean over seeds with the "
             "95% percentile bootstrap interval. Splits: `test` held-out orbits from the training half-plane; "
             "`test_rotated` the same moved by random true-group elements; `shift_half` orbits starting in "
             "the other half-plane (the paper's test set); `shift_quarter` a model trained on one quadrant, "
             "tested on the other three.", ""]
    for task, sub in summary.groupby("task", sort=False):
        mse = sub[sub.metric == "test_mse"]
        lines += [f"## {task}", "", "### Test MSE per split", ""]
        lines += _pivot_markdown(mse[mse.split.isin(SPLITS)], list(SPLITS), list(SPLITS))
        frac = mse[mse.train_fraction.notna()]
        if not frac.empty:
            cols = sorted(frac.split.unique(), key=fraction_of)
            lines += ["", "### Sample efficiency: `test` MSE against the fraction of training orbits", ""]
            lines += _pivot_markdown(frac, cols, [f"{fraction_of(c):g}" for c in cols])
        extra = sub[sub.metric.isin(["equivariance_error", "algebra_similarity"])]
        if not extra.empty:
            lines += ["", "### The symmetry used: similarity to the true algebra, and the trained model's "
                      "equivariance error under the true group", ""]
            lines += ["| condition | algebra_similarity | equivariance_error |", "|---|---|---|"]
            for cond, grp in extra.groupby("condition", sort=False):
                cells = {r.metric: _cell(r) for r in grp.itertuples()}
                lines.append(f"| {cond} | {cells.get('algebra_similarity', '–')} | "
                             f"{cells.get('equivariance_error', '–')} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def bar_figure(task: str, summary: pd.DataFrame, out: Path) -> None:
    """Grouped bars: test MSE (log scale) per split, one bar per condition, 95% CI error bars."""
    import matplotlib.pyplot as plt

    from .figures import save

    sub = summary[(summary.metric == "test_mse") & summary.split.isin(SPLITS)]
    conds = list(dict.fromkeys(sub.condition))
    splits = [s for s in SPLITS if s in set(sub.split)]
    width = 0.8 / max(len(conds), 1)
    colours = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(1.6 + 1.9 * len(splits), 3.6))
    for i, cond in enumerate(conds):
        c = sub[sub.condition == cond].set_index("split").reindex(splits)
        pos = np.arange(len(splits)) - 0.4 + width * (i + 0.5)
        err = np.vstack([c["mean"] - c.ci_low, c.ci_high - c["mean"]]).clip(min=0)
        ax.bar(pos, c["mean"], width, yerr=err, capsize=2, label=cond, color=colours(i % 10))
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(splits)), splits)
    ax.set_ylabel("test MSE (log scale)")
    ax.set_title(f"{task}: downstream test error (mean, 95% CI over seeds)")
    ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    save(fig, out / f"downstream_{task}")


def sample_efficiency_figure(task: str, summary: pd.DataFrame, out: Path) -> None:
    """Test MSE against the training fraction (log-log), one line per condition with its 95% CI band."""
    import matplotlib.pyplot as plt

    from .figures import save

    sub = summary[(summary.metric == "test_mse") & summary.train_fraction.notna()]
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    colours = plt.get_cmap("tab10")
    for i, (cond, c) in enumerate(sub.groupby("condition", sort=False)):
        c = c.sort_values("train_fraction")
        ax.plot(c.train_fraction, c["mean"], marker="o", label=cond, color=colours(i % 10))
        ax.fill_between(c.train_fraction, c.ci_low, c.ci_high, alpha=0.15, color=colours(i % 10))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("fraction of training orbits")
    ax.set_ylabel("test MSE (log scale)")
    ax.set_title(f"{task}: sample efficiency")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    save(fig, out / f"sample_efficiency_{task}")


def report_downstream(runs_dir: Path, out_dir: Path) -> None:
    """Write the downstream tables and figures (see the module docstring) for every task with runs."""
    from .figures import style

    tidy = collect_downstream(runs_dir)
    if tidy.empty:
        raise SystemExit(f"no finished downstream regression runs under {runs_dir}")
    tables = out_dir / "tables"
    write_text(tables / "downstream.csv", tidy.to_csv(index=False))
    summary = summary_table(tidy)
    write_text(tables / "downstream_summary.csv", summary.to_csv(index=False))
    report = markdown_report(summary)
    write_text(tables / "downstream.md", report)
    style()
    for task in summary.task.unique():
        bar_figure(task, summary[summary.task == task], out_dir / "figures")
        sample_efficiency_figure(task, summary[summary.task == task], out_dir / "figures")
    print(f"downstream tables in {tables}, figures in {out_dir / 'figures'}", file=sys.stderr)
    print(report, file=sys.stderr)
