"""Top-tagging downstream results: accuracy, AUC and background rejection per condition, and ROC curves.

Reads every finished run under runs/<task>/downstream/<model>/<symmetry>/seed<k>/ whose model is a
jet tagger (downstream_jets.MODELS) and writes

  tables/jets_tidy.csv           the tidy rows (plus run time, memory, config hash, code version)
  tables/jets.csv                per task x model x symmetry x split x metric: statistics over seeds
  tables/jets.md|tex|html        test accuracy, AUC, 1/eps_B at eps_S = 0.3 and |cos(J, Minkowski)|
                                 per condition: mean ± std [95% bootstrap interval] over seeds
  figures/roc_<task>.png|pdf     ROC curves and background rejection against signal efficiency
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..downstream_jets import MODELS, REJECTION
from ..io import write_text
from .aggregate import TIDY_COLUMNS
from .stats import summarise
from .tables import Table, best_mask, fmt_interval

GROUP = ["task", "model", "symmetry", "split", "metric"]
SOURCE_ORDER = {"none": 0, "true": 2, "wrong": 3}  # learned metrics (1) between the baseline and the truth
COLUMNS = {  # table column -> (split, metric, higher is better)
    "accuracy": ("test", "accuracy", True),
    "AUC": ("test", "auc", True),
    "1/eps_B at eps_S = 0.3": ("test", REJECTION, True),
    "abs. cos(J, Minkowski)": ("train", "metric_cosine_to_minkowski", None),
}


def condition(model: str, symmetry: str) -> str:
    """Readable label of a (model, symmetry source) pair."""
    if model == "baseline":
        return "particle-flow baseline (no symmetry)"
    names = {"true": "Minkowski metric (true; LorentzNet)", "wrong": "Euclidean metric (wrong)"}
    return f"LieGNN, {names.get(symmetry, f'metric from {symmetry}')}"


def condition_key(model: str, symmetry: str) -> tuple[int, int, str]:
    """Sort key: the baseline, then LieGNN with learned metrics, the true metric, the wrong one."""
    return (0 if model == "baseline" else 1), SOURCE_ORDER.get(symmetry, 1), symmetry


def collect_jets(runs_dir: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Tidy rows [rows x TIDY_COLUMNS] of every finished jet-tagging run, and the runs (with their folder)."""
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    for path in sorted(runs_dir.glob("*/downstream/*/*/seed*/metrics.json")):
        res = json.loads(path.read_text())
        if res.get("model") not in MODELS:
            continue
        runs.append({**res, "path": path.parent})
        extra = {k: res[k] for k in ("run_seconds", "peak_memory_mb", "config_hash", "code_version")}
        rows.extend({**r, **extra} for r in res["rows"])
    return pd.DataFrame(rows, columns=TIDY_COLUMNS), runs


def summary_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, model, symmetry, split, metric): statistics over seeds and the condition label."""
    out = []
    for key, grp in tidy.groupby(GROUP, sort=False):
        out.append({**dict(zip(GROUP, key)), **summarise(grp.sort_values("seed").value.to_numpy()),
                    "condition": condition(key[1], key[2]),
                    "seeds": ",".join(str(s) for s in sorted(grp.seed)),
                    "run_seconds_mean": float(grp.run_seconds.mean())})
    summary = pd.DataFrame(out)
    order = summary.apply(lambda r: condition_key(r.model, r.symmetry), axis=1)
    return summary.assign(_order=order).sort_values(["task", "_order", "split", "metric"]).drop(columns="_order")


def jets_view(summary: pd.DataFrame) -> Table:
    """The table view: a row per task x condition, a column per COLUMNS entry, each task's best in bold.

    A rejection cell starts with '≥' when, for some seed, no test background passed the cut and the
    value is the lower bound N_B (see downstream_jets.background_rejection).
    """
    keys = list(dict.fromkeys(zip(summary.task, summary.condition)))
    cells = pd.DataFrame("-", index=range(len(keys)), columns=["task", "condition", "seeds", *COLUMNS])
    values = pd.DataFrame(np.nan, index=cells.index, columns=list(COLUMNS))
    for i, (task, cond) in enumerate(keys):
        grp = summary[(summary.task == task) & (summary.condition == cond)]
        cells.loc[i, ["task", "condition", "seeds"]] = [task, cond, str(int(grp.n.max()))]
        for col, (split, metric, _) in COLUMNS.items():
            r = grp[(grp.split == split) & (grp.metric == metric)]
            if r.empty:
                continue
            r = r.iloc[0]
            bound = grp[(grp.split == split) & (grp.metric == f"{metric}_lower_bound")]
            prefix = "≥ " if not bound.empty and bound.iloc[0]["mean"] > 0 else ""
            cells.loc[i, col] = prefix + fmt_interval(r["mean"], r.ci_low, r.ci_high, r["std"])
            values.loc[i, col] = r["mean"]
    bold = best_mask(values, cells.task, {c: h for c, (_, _, h) in COLUMNS.items()})
    for col in ("seeds", "condition", "task"):
        bold.insert(0, col, False)
    note = ("Test-split accuracy, AUC and background rejection 1/eps_B at signal efficiency 0.3: mean ± std "
            "[95% percentile bootstrap interval] over seeds; best mean per task and column in bold. '≥': for "
            "at least one seed no test background jet passed the cut, so its rejection is the lower bound N_B. "
            "abs. cos(J, Minkowski): |cosine| of the metric LieGNN used with diag(1, -1, -1, -1).")
    return Table(cells, bold[cells.columns], "Top tagging", note)


def roc_figure(task: str, runs: list[dict[str, Any]], out: Path) -> None:
    """ROC curves (left) and 1/eps_B against eps_S (right, log scale): one colour per condition, one line per seed."""
    import matplotlib.pyplot as plt

    from .figures import save

    fig, (ax_roc, ax_rej) = plt.subplots(1, 2, figsize=(10, 4))
    colours = plt.get_cmap("tab10")
    runs = sorted((r for r in runs if r["task"] == task), key=lambda r: (condition_key(r["model"], r["symmetry"]), r["seed"]))
    colour_of: dict[str, Any] = {}
    for r in runs:
        cond = condition(r["model"], r["symmetry"])
        label = None if cond in colour_of else cond
        colour = colour_of.setdefault(cond, colours(len(colour_of) % 10))
        with np.load(Path(r["path"]) / "roc.npz", allow_pickle=False) as z:
            fpr, tpr = z["fpr"], z["tpr"]
        ax_roc.plot(fpr, tpr, color=colour, lw=1, alpha=0.8, label=label)
        keep = fpr > 0
        ax_rej.plot(tpr[keep], 1.0 / fpr[keep], color=colour, lw=1, alpha=0.8, label=label)
    ax_roc.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax_roc.set_xlabel("background efficiency eps_B (false positive rate)")
    ax_roc.set_ylabel("signal efficiency eps_S (true positive rate)")
    ax_roc.set_title(f"{task}: ROC (test split)")
    ax_rej.axvline(0.3, color="grey", lw=0.8, ls=":")
    ax_rej.set_yscale("log")
    ax_rej.set_xlabel("signal efficiency eps_S")
    ax_rej.set_ylabel("background rejection 1/eps_B")
    ax_rej.set_title("background rejection (one line per seed)")
    ax_rej.legend(fontsize=7, loc="upper right")
    save(fig, out / f"roc_{task}")


def report_jets(runs_dir: Path, out_dir: Path) -> None:
    """Write the top-tagging tables and figures (see the module docstring) for every task with jet runs."""
    from .figures import style

    tidy, runs = collect_jets(runs_dir)
    if tidy.empty:
        raise SystemExit(f"no finished top-tagging downstream runs under {runs_dir}")
    tables = out_dir / "tables"
    write_text(tables / "jets_tidy.csv", tidy.to_csv(index=False))
    summary = summary_table(tidy)
    write_text(tables / "jets.csv", summary.to_csv(index=False))
    view = jets_view(summary)
    view.write(tables / "jets")
    style()
    for task in summary.task.unique():
        roc_figure(task, runs, out_dir / "figures")
    print(f"top-tagging tables in {tables}, figures in {out_dir / 'figures'}", file=sys.stderr)
    print(view.markdown(), file=sys.stderr)
