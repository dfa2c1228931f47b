"""Numbers quoted from the LieGAN paper and its published code, set beside ours.

They live in one data file, benchmarks/paper_numbers.csv, one row per quoted number with the
columns PAPER_COLUMNS. They never enter our result rows: the reproduction table puts a quoted
value and our summary of the matching rows side by side, with a verdict.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import UserError
from .stats import higher_is_better

PAPER_COLUMNS = ["task", "source_id", "method", "model", "symmetry", "split", "metric", "value", "spread", "source"]
MATCH_KEYS = ["task", "method", "model", "symmetry", "split", "metric"]
REQUIRED_KEYS = ["task", "metric"]
PAPER_NUMBERS = Path(__file__).resolve().parents[2] / "benchmarks" / "paper_numbers.csv"


def load_paper_numbers(path: str | Path = PAPER_NUMBERS) -> pd.DataFrame:
    """The quoted numbers [rows, PAPER_COLUMNS]; empty strings where a key does not apply.

    Errors name the file, the line and what was expected.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: paper numbers file not found")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in PAPER_COLUMNS if c not in table.columns]
    if missing:
        raise UserError(f"{path}: missing columns {missing}; expected {PAPER_COLUMNS}")
    for key in REQUIRED_KEYS:
        empty = table[key].str.strip() == ""
        if empty.any():
            raise UserError(f"{path}: line {int(empty.idxmax()) + 2}: column '{key}' must not be empty")
    for col in ("value", "spread"):
        numbers = pd.to_numeric(table[col].where(table[col] != ""), errors="coerce")
        bad = numbers.isna() & ((table[col] != "") | (col == "value"))
        if bad.any():
            i = int(bad.idxmax())
            raise UserError(f"{path}: line {i + 2}: column '{col}' must be a number, got '{table.at[i, col]}'")
        table[col] = numbers
    return table[PAPER_COLUMNS]


def verdict(paper_value: float, mean: float, low: float, high: float, metric: str) -> str:
    """'inside' if the paper's value lies in our interval [low, high], else 'better' / 'worse'
    (ours against the paper's, by the metric's direction), or 'outside' for metrics without one."""
    if low <= paper_value <= high:
        return "inside"
    direction = higher_is_better(metric)
    if direction is None:
        return "outside"
    return "better" if (mean > paper_value) == direction else "worse"


def reproduction_table(summary: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Each quoted number beside our summary of the matching rows.

    summary: one row per (task, method, model, symmetry, split, metric) with n, mean, ci_low,
    ci_high (aggregate.summary_table); paper: load_paper_numbers(). A paper row matches our rows
    that agree on task and metric and on each of method, model, symmetry, split the paper row
    fills in. One output row per match (the keys then taken from our row), or one row with
    verdict 'not run' when nothing matches.
    """
    rows = []
    for p in paper.itertuples(index=False):
        match = summary
        for key in MATCH_KEYS:
            wanted = getattr(p, key)
            if wanted != "":
                match = match[match[key] == wanted]
        quoted = {"paper_value": p.value, "paper_spread": p.spread, "source_id": p.source_id, "source": p.source}
        if match.empty:
            rows.append({**{k: getattr(p, k) for k in MATCH_KEYS}, **quoted, "n": 0, "seeds": "",
                         "mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "verdict": "not run"})
            continue
        for ours in match.itertuples(index=False):
            rows.append({**{k: getattr(ours, k) for k in MATCH_KEYS}, **quoted, "n": ours.n, "seeds": ours.seeds,
                         "mean": ours.mean, "ci_low": ours.ci_low, "ci_high": ours.ci_high,
                         "verdict": verdict(p.value, ours.mean, ours.ci_low, ours.ci_high, p.metric)})
    columns = [*MATCH_KEYS, "paper_value", "paper_spread", "source_id", "source", "n", "seeds", "mean",
               "ci_low", "ci_high", "verdict"]
    return pd.DataFrame(rows, columns=columns)
