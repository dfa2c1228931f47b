"""Statistics over seeds: mean, std, median, interquartile mean and a 95% bootstrap interval.

The interval follows rliable (Agarwal et al., NeurIPS 2021): a percentile bootstrap over runs,
stratified by task (one sample per task to scipy.stats.bootstrap), with a fixed resampling seed
so that tables are stable from one aggregation to the next.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

BOOTSTRAP_SEED = 20230723
BOOTSTRAP_RESAMPLES = 2000


def iqm(values: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% (scipy's 25% trimmed mean)."""
    return float(stats.trim_mean(np.asarray(values, dtype=float), 0.25))


def bootstrap_ci(values: np.ndarray, statistic=np.mean, confidence: float = 0.95) -> tuple[float, float]:
    """95% percentile bootstrap interval of `statistic` over runs [n_runs]; degenerate for n < 2."""
    v = np.asarray(values, dtype=float)
    if v.size < 2 or np.allclose(v, v[0]):
        return float(v.mean()), float(v.mean())
    res = stats.bootstrap(
        (v,), statistic, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=confidence,
        method="percentile", random_state=np.random.default_rng(BOOTSTRAP_SEED), vectorized=False,
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarise(values: np.ndarray) -> dict[str, float]:
    """Summary of one metric over seeds [n_seeds]."""
    v = np.asarray(values, dtype=float)
    lo, hi = bootstrap_ci(v)
    return {
        "n": int(v.size), "mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "median": float(np.median(v)), "iqm": iqm(v), "ci_low": lo, "ci_high": hi,
    }
