"""Collect finished runs into tidy tables, summaries over seeds and tasks, comparisons, and figures.

Every number in a table or figure comes from a run's metrics.json (or, for the quoted numbers in
the reproduction table, from benchmarks/paper_numbers.csv); nothing is typed in. Files written
under out_dir (`figures_for`, `table_views` and `other_outputs` list them all):

  tables/tidy.csv                  every result row of every run (discovery and downstream)
  tables/discovery.csv             the discovery rows only (tidy)
  tables/summary.csv               statistics over seeds per (task, method, model, symmetry, split, metric)
  tables/discovery_summary.csv     the same, discovery rows only
  tables/discovery.{md,tex,html}   discovery metrics per task and method, best per task in bold
  tables/over_tasks.{csv,md,tex,html}    cross-task aggregates (IQM, mean, median) per method
  tables/pairwise.{csv,md,tex,html}      method against method on the same seeds
  tables/reproduction.{csv,md,tex,html}  the paper's numbers beside ours, with a verdict
  figures/*.png|pdf                similarity, generators, training curves, run time and memory
"""
from __future__ import annotations

import json
import sys
from itertools import combinations
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ..io import write_text
from .paper import PAPER_NUMBERS, load_paper_numbers, reproduction_table
from .stats import higher_is_better, paired_difference, probability_of_improvement, summarise, summarise_over_tasks
from .tables import Table, best_mask, fmt, fmt_interval, method_order

TIDY_COLUMNS = ["task", "method", "model", "symmetry", "seed", "split", "metric", "value",
                "run_seconds", "peak_memory_mb", "config_hash", "code_version"]
KEY_COLUMNS = ["task", "method", "model", "symmetry", "seed", "split", "metric"]
SUMMARY_KEYS = ["task", "method", "model", "symmetry", "split", "metric"]
DISCOVERY_METRICS = ["algebra_similarity", "mean_cos2", "worst_angle_deg", "closure_error", "min_generator_norm"]
CROSS_TASK_METRICS = ["algebra_similarity"]
RUN_GLOBS = {"discover": "*/discover/*/seed*/metrics.json", "downstream": "*/downstream/**/metrics.json"}
TABLE_STEMS = ["discovery", "over_tasks", "pairwise", "reproduction"]
INTERVAL_NOTE = ("95% CI: percentile bootstrap over seeds (2000 resamples, fixed seed), stratified by task "
                 "for cross-task aggregates, as in rliable (Agarwal et al., NeurIPS 2021).")


def collect_runs(runs_dir: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Tidy rows [rows, TIDY_COLUMNS] of every finished run under runs_dir, and the runs themselves.

    Discovery runs: runs_dir/<task>/discover/<method>/seed<k>/metrics.json; downstream runs:
    any metrics.json under runs_dir/<task>/downstream/. Each run dict is its metrics.json with
    `path` (the run folder) and `stage` ('discover' or 'downstream') added. Key columns hold ''
    where they do not apply.
    """
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    for stage, pattern in RUN_GLOBS.items():
        for path in sorted(runs_dir.glob(pattern)):
            res = json.loads(path.read_text())
            runs.append({**res, "path": str(path.parent), "stage": stage})
            for r in res["rows"]:
                rows.append({**r, "run_seconds": res["run_seconds"], "peak_memory_mb": res["peak_memory_mb"],
                             "config_hash": res["config_hash"], "code_version": res["code_version"]})
    tidy = pd.DataFrame(rows, columns=TIDY_COLUMNS)
    text_keys = [k for k in KEY_COLUMNS if k != "seed"]
    tidy[text_keys] = tidy[text_keys].fillna("").astype(str)
    tidy["seed"] = tidy["seed"].astype(int)
    return tidy.sort_values(KEY_COLUMNS, kind="stable").reset_index(drop=True), runs


def read_tidy(path: Path) -> pd.DataFrame:
    """A tidy table written by `aggregate` (tables/tidy.csv), with '' (not NaN) in empty key cells."""
    tidy = pd.read_csv(path, dtype={k: str for k in KEY_COLUMNS if k != "seed"}, keep_default_na=False,
                       na_values={"value": ["", "nan", "NaN"]})
    for col in ("value", "run_seconds", "peak_memory_mb"):
        tidy[col] = pd.to_numeric(tidy[col], errors="coerce")
    return tidy


def summary_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, method, model, symmetry, split, metric): stats.summarise over seeds
    (n, mean, std, median, iqm, ci_low, ci_high), the seeds, mean run time and peak memory per run."""
    out = []
    for keys, grp in tidy.groupby(SUMMARY_KEYS, sort=True):
        grp = grp.sort_values("seed")
        out.append({**dict(zip(SUMMARY_KEYS, keys)), **summarise(grp.value.to_numpy()),
                    "seeds": ",".join(str(s) for s in grp.seed),
                    "run_seconds_mean": float(grp.run_seconds.mean()),
                    "peak_memory_mb_mean": float(grp.peak_memory_mb.mean())})
    columns = [*SUMMARY_KEYS, "n", "mean", "std", "median", "iqm", "ci_low", "ci_high", "seeds",
               "run_seconds_mean", "peak_memory_mb_mean"]
    return pd.DataFrame(out, columns=columns)


def discovery_view(summary: pd.DataFrame) -> Table:
    """Discovery metrics per task (block) and method (row): mean ± std [95% CI] over seeds, then
    time and peak memory per run; the best per column within each task in bold (the oracle, which
    is given the true algebra, is never marked)."""
    disc = summary[summary.metric.isin(DISCOVERY_METRICS) & (summary.model == "")]
    metrics = [m for m in DISCOVERY_METRICS if m in set(disc.metric)]
    records, numbers = [], []
    for task, grp in disc.groupby("task", sort=True):
        for method in method_order(list(grp.method)):
            rows = grp[grp.method == method].set_index("metric")
            any_row = rows.iloc[0]
            cells = {"task": task, "method": method, "seeds": str(int(any_row.n))}
            values: dict[str, float] = {}
            for m in metrics:
                if m in rows.index:
                    r = rows.loc[m]
                    cells[m] = fmt_interval(r["mean"], r.ci_low, r.ci_high, r["std"])
                    values[m] = r["mean"]
                else:
                    cells[m], values[m] = "-", float("nan")
            cells["time/run (s)"] = fmt(any_row.run_seconds_mean)
            cells["peak memory (MB)"] = fmt(any_row.peak_memory_mb_mean)
            values["time/run (s)"] = any_row.run_seconds_mean
            values["peak memory (MB)"] = any_row.peak_memory_mb_mean
            records.append(cells)
            numbers.append({"task": task, **values})
    cells = pd.DataFrame(records, columns=["task", "method", "seeds", *metrics, "time/run (s)", "peak memory (MB)"])
    values = pd.DataFrame(numbers, columns=["task", *metrics, "time/run (s)", "peak memory (MB)"])
    higher = {**{m: higher_is_better(m) for m in metrics}, "time/run (s)": False, "peak memory (MB)": False}
    bold = best_mask(values.drop(columns="task"), values["task"], higher, eligible=cells.method != "oracle")
    bold = bold.reindex(columns=cells.columns, fill_value=False)
    note = ("Similarity of the learned Lie algebra to the true one (algebra_similarity: |cos| for a "
            "one-dimensional truth, mean cos² of principal angles otherwise; 1 = the true algebra), the "
            "largest principal angle, and how far the learned span is from closing under the commutator. "
            "Cells: mean ± std over seeds [95% CI]. " + INTERVAL_NOTE + " Bold: best per column within a task "
            "(the oracle, given the true algebra, is not ranked).")
    return Table(cells, bold, "Discovery results", note)


def over_tasks_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Cross-task aggregates per (method, metric) for CROSS_TASK_METRICS (scores on a common 0-1
    scale): stats.summarise_over_tasks over the discovery rows, with the tasks each method ran on."""
    rows = []
    disc = tidy[tidy.metric.isin(CROSS_TASK_METRICS) & (tidy.model == "")]
    for (metric, method), grp in disc.groupby(["metric", "method"], sort=True):
        per_task = [g.sort_values("seed").value.to_numpy() for _, g in grp.groupby("task", sort=True)]
        rows.append({"metric": metric, "method": method, "tasks": ",".join(sorted(set(grp.task))),
                     **summarise_over_tasks(per_task)})
    columns = ["metric", "method", "tasks", "n_tasks", "n_runs", "iqm", "iqm_ci_low", "iqm_ci_high", "mean",
               "mean_ci_low", "mean_ci_high", "median", "median_ci_low", "median_ci_high"]
    return pd.DataFrame(rows, columns=columns)


def over_tasks_view(table: pd.DataFrame) -> Table:
    """IQM, mean and median over tasks with stratified 95% intervals; best per column per metric in bold."""
    cells = pd.DataFrame({
        "metric": table.metric, "method": table.method, "tasks": table.tasks, "runs": table.n_runs.astype(str),
        **{name: [fmt_interval(r[name], r[f"{name}_ci_low"], r[f"{name}_ci_high"]) for _, r in table.iterrows()]
           for name in ("iqm", "mean", "median")},
    }, columns=["metric", "method", "tasks", "runs", "iqm", "mean", "median"])
    values = table[["iqm", "mean", "median"]]
    higher = {name: True for name in values.columns}
    bold = best_mask(values, table.metric, higher, eligible=table.method != "oracle")
    bold = bold.reindex(columns=cells.columns, fill_value=False)
    note = ("Aggregates over tasks of each method's runs: IQM (mean of the middle 50% of all runs), mean and "
            "median over tasks of the per-task means. Cells: value [95% CI]. " + INTERVAL_NOTE +
            " Methods that ran on different tasks are not directly comparable: see the tasks column. "
            "Bold: best per column (the oracle is not ranked).")
    return Table(cells, bold, "Aggregates over tasks", note)


def pairwise_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Every pair of variants (methods; models with their symmetry source downstream) on the same
    task, split and metric, over the seeds both ran: the difference of means with its paired
    bootstrap interval, and the probability that a run of A is better than a run of B.

    Only metrics with a direction (stats.higher_is_better) are compared, and only where the runs
    differ at all (a metric equal in every run, e.g. the closure error of one generator, says nothing).
    """
    rows = []
    tidy = tidy.assign(arm=np.where(tidy.model == "", tidy.method, tidy.model + " (" + tidy.symmetry + ")"))
    for (task, split, metric), grp in tidy.groupby(["task", "split", "metric"], sort=True):
        direction = higher_is_better(metric)
        if direction is None or grp.value.nunique(dropna=False) == 1:
            continue
        by_arm = {arm: g.set_index("seed").value.sort_index() for arm, g in grp.groupby("arm")}
        arms = method_order(list(by_arm)) if all(m == "" for m in grp.model) else sorted(by_arm)
        for a, b in combinations(arms, 2):
            seeds = by_arm[a].index.intersection(by_arm[b].index).sort_values()
            if len(seeds) == 0:
                continue
            xa, xb = by_arm[a].loc[seeds].to_numpy(), by_arm[b].loc[seeds].to_numpy()
            diff, lo, hi = paired_difference(xa, xb)
            sign = 1.0 if direction else -1.0
            p, p_lo, p_hi = probability_of_improvement([sign * xa], [sign * xb])
            rows.append({"task": task, "split": split, "metric": metric, "a": a, "b": b,
                         "higher_is_better": direction, "n_seeds": len(seeds),
                         "seeds": ",".join(str(s) for s in seeds), "mean_a": float(xa.mean()),
                         "mean_b": float(xb.mean()), "difference": diff, "difference_ci_low": lo,
                         "difference_ci_high": hi, "p_a_better": p, "p_ci_low": p_lo, "p_ci_high": p_hi})
    columns = ["task", "split", "metric", "a", "b", "higher_is_better", "n_seeds", "seeds", "mean_a", "mean_b",
               "difference", "difference_ci_low", "difference_ci_high", "p_a_better", "p_ci_low", "p_ci_high"]
    return pd.DataFrame(rows, columns=columns)


def pairwise_view(table: pd.DataFrame) -> Table:
    """Pairwise comparisons; bold where the interval excludes no difference (0, or P = 0.5)."""
    cells = pd.DataFrame({
        "task": table.task, "metric": table.metric, "split": table.split, "A": table.a, "B": table.b,
        "seeds": table.n_seeds.astype(str),
        "mean A - mean B [95% CI]": [fmt_interval(r.difference, r.difference_ci_low, r.difference_ci_high)
                                     for r in table.itertuples()],
        "P(A better than B) [95% CI]": [fmt_interval(r.p_a_better, r.p_ci_low, r.p_ci_high)
                                        for r in table.itertuples()],
    })
    bold = pd.DataFrame(False, index=cells.index, columns=cells.columns)
    bold["mean A - mean B [95% CI]"] = ((table.difference_ci_low > 0) | (table.difference_ci_high < 0)).to_numpy()
    bold["P(A better than B) [95% CI]"] = ((table.p_ci_low > 0.5) | (table.p_ci_high < 0.5)).to_numpy()
    note = ("Method A against method B on the seeds both ran. Difference of means with a paired bootstrap "
            "interval (seeds resampled jointly); probability of improvement P(A better than B): the chance "
            "that a run of A beats a run of B (ties count 1/2, 'better' by the metric's direction), with a "
            "bootstrap interval resampling each method's runs, as in rliable (Agarwal et al., NeurIPS 2021). "
            "Bold: the 95% CI excludes no difference (0, resp. 0.5).")
    return Table(cells, bold, "Pairwise comparison of methods", note)


def reproduction_view(table: pd.DataFrame) -> Table:
    """The paper's numbers beside ours; in each row the better of the two numbers in bold."""
    def key(r: Any) -> str:
        parts = [r.method, r.model, r.symmetry, r.split]
        return " / ".join(p for p in parts if p) or "-"

    cells = pd.DataFrame({
        "task": table.task, "variant": [key(r) for r in table.itertuples()], "metric": table.metric,
        "paper": [fmt(r.paper_value) + ("" if np.isnan(r.paper_spread) else f" ± {fmt(r.paper_spread)}")
                  for r in table.itertuples()],
        "source": table.source_id + " [" + table.source + "]",
        "ours: mean [95% CI]": ["-" if r.n == 0 else fmt_interval(r.mean, r.ci_low, r.ci_high)
                                for r in table.itertuples()],
        "seeds": table.n.astype(str), "verdict": table.verdict,
    })
    bold = pd.DataFrame(False, index=cells.index, columns=cells.columns)
    bold["ours: mean [95% CI]"] = (table.verdict == "better").to_numpy()
    bold["paper"] = (table.verdict == "worse").to_numpy()
    note = ("Numbers quoted from the LieGAN paper or measured on its published code (benchmarks/paper_numbers.csv, "
            "with their source) beside our mean over seeds and its 95% CI. Verdict: 'inside' = the quoted value "
            "lies in our interval; 'better' / 'worse' = ours against the quoted value by the metric's direction; "
            "'not run' = no matching rows in this run. " + INTERVAL_NOTE + " Bold: the better of the two numbers.")
    return Table(cells, bold, "Reproduction: quoted numbers beside ours", note)


class Figure(NamedTuple):
    """One figure `aggregate` draws: its PNG path (a PDF beside it), kind, task and method ('' if none)."""

    png: str
    kind: str
    task: str
    method: str


def figures_for(out_dir: str | Path, tasks: dict[str, list[str]]) -> list[Figure]:
    """The figures `aggregate` draws for tasks {task: [discovery methods]}: per task the similarity
    and the run time and memory figures; per task and method the generators and training curves."""
    fig_dir = Path(out_dir) / "figures"
    out = []
    for task, methods in tasks.items():
        out += [Figure(str(fig_dir / f"{kind}_{task}.png"), kind, task, "") for kind in ("similarity", "resources")]
        out += [Figure(str(fig_dir / f"{kind}_{task}_{m}.png"), kind, task, m)
                for m in methods for kind in ("generators", "training")]
    return out


def table_views(out_dir: str | Path) -> dict[str, str]:
    """The HTML view of each presented table, {stem: path} (for the report)."""
    return {stem: str(Path(out_dir) / "tables" / f"{stem}.html") for stem in TABLE_STEMS}


def other_outputs(out_dir: str | Path, tasks: dict[str, list[str]]) -> list[str]:
    """Every other file `aggregate` writes: the CSV, Markdown and LaTeX tables and the PDF figures."""
    tables = Path(out_dir) / "tables"
    files = [tables / f for f in ("tidy.csv", "discovery.csv", "summary.csv", "discovery_summary.csv")]
    files += [tables / f"{stem}.{ext}" for stem in TABLE_STEMS for ext in ("md", "tex")]
    files += [tables / f"{stem}.csv" for stem in TABLE_STEMS if stem != "discovery"]
    return [str(p) for p in files] + [str(Path(f.png).with_suffix(".pdf")) for f in figures_for(out_dir, tasks)]


def aggregate(runs_dir: Path, out_dir: Path, data_dir: Path | None = None,
              paper_numbers: Path = PAPER_NUMBERS, jobs: int = 1) -> None:
    """Write every table and figure (figures_for, table_views, other_outputs) from the runs under runs_dir;
    `jobs` processes draw the figures."""
    tidy, runs = collect_runs(runs_dir)
    if tidy.empty:
        raise SystemExit(f"no finished runs under {runs_dir}")
    tables = out_dir / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    discovery = tidy[tidy.model == ""]
    write_text(tables / "tidy.csv", tidy.to_csv(index=False))
    write_text(tables / "discovery.csv", discovery.to_csv(index=False))
    summary = summary_table(tidy)
    write_text(tables / "summary.csv", summary.to_csv(index=False))
    write_text(tables / "discovery_summary.csv", summary[summary.model == ""].to_csv(index=False))
    discovery_view(summary).write(tables / "discovery")

    over_tasks = over_tasks_table(tidy)
    write_text(tables / "over_tasks.csv", over_tasks.to_csv(index=False))
    over_tasks_view(over_tasks).write(tables / "over_tasks")
    pairwise = pairwise_table(tidy)
    write_text(tables / "pairwise.csv", pairwise.to_csv(index=False))
    pairwise_view(pairwise).write(tables / "pairwise")
    reproduction = reproduction_table(summary, load_paper_numbers(paper_numbers))
    write_text(tables / "reproduction.csv", reproduction.to_csv(index=False))
    reproduction_view(reproduction).write(tables / "reproduction")

    from .figures import discovery_figures

    discovery_figures(tidy, summary, [r for r in runs if r["stage"] == "discover"], out_dir / "figures",
                      data_dir or out_dir / "data", jobs=jobs)
    print(f"tables in {tables}, figures in {out_dir / 'figures'}", file=sys.stderr)
    print(discovery_view(summary[summary.metric == "algebra_similarity"]).markdown(), file=sys.stderr)
