"""Statistics over seeds and tasks: point estimates, bootstrap intervals, pairwise comparisons.

Definitions follow rliable (Agarwal et al., "Deep Reinforcement Learning at the Edge of the
Statistical Precipice", NeurIPS 2021):

- interquartile mean (IQM): the mean of the middle 50% of runs, pooled over tasks;
- aggregate mean / median: the mean / median over tasks of each task's mean over runs;
- 95% stratified percentile bootstrap interval: resample runs with replacement *within each task*
  (the task is the stratum), recompute the aggregate, and take the 2.5th and 97.5th percentiles of
  the resampled aggregates. For one task this is the ordinary percentile bootstrap over seeds;
- probability of improvement P(X > Y): for each task, the probability that a run of method X beats a
  run of method Y (ties count one half; the Mann-Whitney U statistic divided by n_x * n_y), averaged
  over tasks.

The interval equals scipy.stats.bootstrap(method="percentile") given one sample per task (checked
in tests/test_stats.py); it is written out here because it also accepts tasks with a single run
(scipy refuses samples of size one) and uses a fixed resampling seed, so that tables are stable
from one aggregation to the next. rliable itself is not a dependency (it does not import with
pandas 3).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

BOOTSTRAP_SEED = 20230723
BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95

# An aggregate maps per-task score arrays, each [..., n_runs_of_task], to an array [...].
Aggregate = Callable[[Sequence[np.ndarray]], np.ndarray]

_HIGHER_IS_BETTER = ("similarity", "accuracy", "auc", "background_rejection", "cos2", "cosine")
_LOWER_IS_BETTER = ("mse", "error", "closure", "worst_angle")


def higher_is_better(metric: str) -> bool | None:
    """Direction of a metric by its name: True (higher is better), False (lower), None (no order).

    Higher: names containing similarity, accuracy, auc, background_rejection, cos2 or cosine.
    Lower: mse, error, closure or worst_angle (the largest principal angle). Flags such as
    `background_rejection_at_0.3_lower_bound`, counts such as `n_boost_channels`, plain
    measurements such as `recovered_angle_deg` and training diagnostics such as `final_task_loss`
    (not comparable between methods) have no order.
    """
    if metric.endswith("_lower_bound") or metric.startswith("n_"):
        return None
    if any(word in metric for word in _LOWER_IS_BETTER):
        return False
    if any(word in metric for word in _HIGHER_IS_BETTER):
        return True
    return None


def iqm(values: np.ndarray, axis: int = -1) -> np.ndarray | float:
    """Interquartile mean of `values` along `axis`: the mean of the middle 50% of runs.

    The rliable definition (a 25% trimmed mean); for values [n_runs] a float, for [..., n_runs]
    an array [...].
    """
    from scipy import stats

    out = stats.trim_mean(np.asarray(values, dtype=float), 0.25, axis=axis)
    return float(out) if np.ndim(out) == 0 else out


def aggregate_mean(per_task: Sequence[np.ndarray]) -> np.ndarray:
    """Mean over tasks of each task's mean over runs; per_task[j]: [..., n_runs_j] -> [...]."""
    return np.mean(np.stack([np.mean(s, axis=-1) for s in per_task]), axis=0)


def aggregate_median(per_task: Sequence[np.ndarray]) -> np.ndarray:
    """Median over tasks of each task's mean over runs; per_task[j]: [..., n_runs_j] -> [...]."""
    return np.median(np.stack([np.mean(s, axis=-1) for s in per_task]), axis=0)


def aggregate_iqm(per_task: Sequence[np.ndarray]) -> np.ndarray:
    """IQM of all runs of all tasks pooled; per_task[j]: [..., n_runs_j] -> [...]."""
    return np.asarray(iqm(np.concatenate(list(per_task), axis=-1), axis=-1))


AGGREGATES: dict[str, Aggregate] = {"mean": aggregate_mean, "median": aggregate_median, "iqm": aggregate_iqm}


def stratified_bootstrap_ci(
    per_task: Sequence[np.ndarray], aggregate: Aggregate, confidence: float = CONFIDENCE,
    n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `aggregate`, resampling runs within each task (stratum).

    per_task: one array of scores per task, per_task[j] of shape [n_runs_j] (tasks may differ in
    the number of runs); aggregate: maps resampled arrays [n_resamples, n_runs_j] to
    [n_resamples]. Returns (low, high) at `confidence`, degenerate (the point value twice) when no
    resample can differ, e.g. one run per task or all runs equal.
    """
    samples = [np.asarray(s, dtype=float).ravel() for s in per_task]
    if not samples or any(s.size == 0 for s in samples):
        raise ValueError("stratified_bootstrap_ci needs at least one run for every task")
    point = float(aggregate(samples))
    if all(np.all(s == s[0]) for s in samples):
        return point, point
    rng = np.random.default_rng(seed)
    resampled = [s[rng.integers(0, s.size, size=(n_resamples, s.size))] for s in samples]
    dist = np.asarray(aggregate(resampled), dtype=float)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(dist, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def bootstrap_ci(values: np.ndarray, aggregate: Aggregate = aggregate_mean,
                 confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval over the runs of one task, values [n_runs] (one stratum)."""
    return stratified_bootstrap_ci([np.asarray(values, dtype=float)], aggregate, confidence)


def summarise(values: np.ndarray) -> dict[str, float]:
    """Summary of one metric over seeds, values [n_seeds]: n, mean, std (ddof 1), median, IQM and
    the 95% bootstrap interval of the mean (ci_low, ci_high)."""
    v = np.asarray(values, dtype=float)
    lo, hi = bootstrap_ci(v)
    return {
        "n": int(v.size), "mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "median": float(np.median(v)), "iqm": float(iqm(v)), "ci_low": lo, "ci_high": hi,
    }


def summarise_over_tasks(per_task: Sequence[np.ndarray]) -> dict[str, float]:
    """Cross-task aggregates of one metric, per_task[j]: [n_runs_j] scores of task j.

    Returns n_tasks, n_runs and, for each of mean, median and IQM (AGGREGATES), the point value
    and its 95% stratified bootstrap interval (keys `<name>`, `<name>_ci_low`, `<name>_ci_high`).
    """
    samples = [np.asarray(s, dtype=float).ravel() for s in per_task]
    out: dict[str, float] = {"n_tasks": len(samples), "n_runs": int(sum(s.size for s in samples))}
    for name, agg in AGGREGATES.items():
        lo, hi = stratified_bootstrap_ci(samples, agg)
        out.update({name: float(agg(samples)), f"{name}_ci_low": lo, f"{name}_ci_high": hi})
    return out


def paired_difference(a: np.ndarray, b: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Difference of means of two methods run on the same seeds, a and b: [n_seeds] in seed order.

    The interval resamples seeds jointly (a paired bootstrap: the mean of the per-seed differences
    a_k - b_k), so that seed-to-seed variation shared by both methods cancels. Returns
    (mean(a) - mean(b), low, high).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_difference needs two [n_seeds] arrays of equal length, got {a.shape} and {b.shape}")
    diff = a - b
    lo, hi = bootstrap_ci(diff, confidence=confidence)
    return float(diff.mean()), lo, hi


def probability_of_improvement(x_per_task: Sequence[np.ndarray], y_per_task: Sequence[np.ndarray],
                               confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """P(X > Y): the chance that a run of X scores above a run of Y (ties count 1/2), averaged over tasks.

    x_per_task[j], y_per_task[j]: [n_runs] scores of methods X and Y on task j, oriented so that
    higher is better (negate lower-is-better metrics first). The interval is the stratified
    bootstrap: the runs of X and of Y are resampled independently within each task. Returns
    (probability, low, high).
    """
    if len(x_per_task) != len(y_per_task) or not x_per_task:
        raise ValueError("probability_of_improvement needs the same, non-zero number of tasks for X and Y")
    n_tasks = len(x_per_task)

    def statistic(samples: Sequence[np.ndarray]) -> np.ndarray:
        per_task = []
        for x, y in zip(samples[:n_tasks], samples[n_tasks:]):
            wins = (x[..., :, None] > y[..., None, :]).mean(axis=(-2, -1))
            ties = (x[..., :, None] == y[..., None, :]).mean(axis=(-2, -1))
            per_task.append(wins + 0.5 * ties)
        return np.mean(np.stack(per_task), axis=0)

    samples = [np.asarray(s, dtype=float).ravel() for s in (*x_per_task, *y_per_task)]
    lo, hi = stratified_bootstrap_ci(samples, statistic, confidence)
    return float(statistic(samples)), lo, hi
