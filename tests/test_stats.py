"""Statistics over seeds and tasks: definitions (rliable's), intervals, pairwise comparisons."""
import numpy as np
import pytest
from scipy import stats as sps

from liegan_core.report import stats


def test_iqm_is_the_mean_of_the_middle_half():
    assert stats.iqm(np.arange(1, 9)) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert stats.iqm(np.array([0.0, 1.0, 1.0, 100.0])) == pytest.approx(1.0)
    batch = stats.iqm(np.stack([np.arange(1, 9), 2 * np.arange(1, 9)]), axis=-1)
    assert np.allclose(batch, [4.5, 9.0])


def test_cross_task_aggregates_follow_rliable():
    per_task = [np.array([0.0, 1.0]), np.array([1.0, 1.0, 1.0, 1.0]), np.array([0.2, 0.4])]
    assert stats.aggregate_mean(per_task) == pytest.approx(np.mean([0.5, 1.0, 0.3]))
    assert stats.aggregate_median(per_task) == pytest.approx(0.5)
    pooled = np.concatenate(per_task)
    assert stats.aggregate_iqm(per_task) == pytest.approx(sps.trim_mean(pooled, 0.25))


@pytest.mark.parametrize("name", ["mean", "median", "iqm"])
def test_stratified_interval_matches_scipy_bootstrap(name):
    rng = np.random.default_rng(3)
    per_task = [rng.normal(loc, 0.1, size=10) for loc in (0.5, 0.7, 0.9)]
    agg = stats.AGGREGATES[name]
    ours = stats.stratified_bootstrap_ci(per_task, agg, n_resamples=4000)
    ref = sps.bootstrap(tuple(per_task), lambda *s, axis: agg([np.moveaxis(x, axis, -1) for x in s]),
                        n_resamples=4000, method="percentile", random_state=np.random.default_rng(0))
    assert ours[0] == pytest.approx(ref.confidence_interval.low, abs=0.01)
    assert ours[1] == pytest.approx(ref.confidence_interval.high, abs=0.01)
    assert ours[0] < agg(per_task) < ours[1]


def test_interval_is_deterministic_and_degenerate_where_nothing_can_vary():
    v = np.array([0.91, 0.95, 0.97, 0.99])
    assert stats.bootstrap_ci(v) == stats.bootstrap_ci(v)
    assert stats.bootstrap_ci(np.array([0.5])) == (0.5, 0.5)
    assert stats.bootstrap_ci(np.array([0.3, 0.3, 0.3])) == (0.3, 0.3)
    # one run per task: every stratum is constant, so every resample is the point value
    assert stats.stratified_bootstrap_ci([np.array([0.2]), np.array([0.6])], stats.aggregate_mean) == (0.4, 0.4)
    with pytest.raises(ValueError, match="at least one run"):
        stats.stratified_bootstrap_ci([np.array([])], stats.aggregate_mean)


def test_summarise_fields():
    s = stats.summarise(np.array([1.0, 2.0, 3.0, 4.0]))
    assert s["n"] == 4 and s["mean"] == pytest.approx(2.5) and s["median"] == pytest.approx(2.5)
    assert s["std"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert s["ci_low"] <= s["mean"] <= s["ci_high"]


def test_summarise_over_tasks_reports_each_aggregate_with_its_interval():
    out = stats.summarise_over_tasks([np.array([0.9, 0.8, 1.0]), np.array([0.5, 0.6])])
    assert out["n_tasks"] == 2 and out["n_runs"] == 5
    for name in ("mean", "median", "iqm"):
        assert out[f"{name}_ci_low"] <= out[name] <= out[f"{name}_ci_high"]


def test_paired_difference_cancels_shared_seed_variation():
    b = np.array([0.1, 0.9, 0.4, 0.7])
    diff, lo, hi = stats.paired_difference(b + 0.05, b)
    assert diff == pytest.approx(0.05) and lo == pytest.approx(0.05) and hi == pytest.approx(0.05)
    with pytest.raises(ValueError, match="equal length"):
        stats.paired_difference(np.ones(3), np.ones(2))


def test_probability_of_improvement():
    p, lo, hi = stats.probability_of_improvement([np.array([2.0, 3.0])], [np.array([0.0, 1.0])])
    assert (p, lo, hi) == (1.0, 1.0, 1.0)
    assert stats.probability_of_improvement([np.array([1.0, 2.0])], [np.array([1.0, 2.0])])[0] == pytest.approx(0.5)
    assert stats.probability_of_improvement([np.array([1.0, 3.0])], [np.array([2.0])])[0] == pytest.approx(0.5)
    # averaged over tasks: X wins task 1, loses task 2
    p, lo, hi = stats.probability_of_improvement([np.array([5.0, 6.0]), np.array([0.0, 0.1])],
                                                 [np.array([1.0, 2.0]), np.array([3.0, 4.0])])
    assert p == pytest.approx(0.5) and lo <= p <= hi


@pytest.mark.parametrize("metric, direction", [
    ("algebra_similarity", True), ("algebra_similarity_to_function_symmetry", True), ("mean_cos2", True),
    ("accuracy", True), ("auc", True), ("background_rejection_at_0.3", True), ("metric_cosine_to_minkowski", True),
    ("test_mse", False), ("closure_error", False), ("angle_error_to_step_multiple_deg", False),
    ("worst_angle_deg", False), ("background_rejection_at_0.3_lower_bound", None), ("n_boost_channels", None),
    ("recovered_angle_deg", None), ("final_task_loss", None),
])
def test_metric_directions(metric, direction):
    assert stats.higher_is_better(metric) is direction
