"""Aggregation without the pipeline: tables (CSV, Markdown, LaTeX, HTML), the paper's numbers, the
reproduction verdicts, and that `aggregate` writes exactly the files the Snakemake rule declares."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liegan_core.errors import UserError
from liegan_core.io import write_json, write_text
from liegan_core.report import aggregate as agg
from liegan_core.report.paper import PAPER_COLUMNS, PAPER_NUMBERS, load_paper_numbers, reproduction_table, verdict
from liegan_core.report.tables import Table, best_mask, latex_escape

SO2 = np.kron(np.eye(4), np.array([[0.0, -1.0], [1.0, 0.0]]))
SIMILARITY = {("liegan", 0): 0.99, ("liegan", 1): 0.97, ("augerino", 0): 0.6, ("augerino", 1): 0.7,
              ("oracle", 0): 1.0, ("oracle", 1): 1.0, ("none", 0): 0.0, ("none", 1): 0.0}


def fake_run(runs: Path, task: str, method: str, seed: int, similarity: float) -> None:
    """A discovery run folder as runner.run_discovery leaves it (no training)."""
    out = runs / task / "discover" / method / f"seed{seed}"
    gens = [] if method == "none" else [(SO2 * similarity + 0.01 * seed).tolist()]
    rows = [{"task": task, "method": method, "model": "", "symmetry": "data", "seed": seed, "split": "train",
             "metric": m, "value": v} for m, v in (("algebra_similarity", similarity), ("closure_error", 0.0))]
    if method in ("liegan", "augerino"):
        write_text(out / "log.csv", "epoch,loss_d,regulariser_identity,seconds\n"
                   + "".join(f"{e},{1.0 / e + seed},{0.5 + 0.1 * e},0.1\n" for e in range(1, 4)))
    else:
        write_text(out / "log.csv", "epoch\n")
    write_json(out / "metrics.json", {
        "rows": rows, "task": task, "method": method, "seed": seed, "run_seconds": 1.0 + seed,
        "peak_memory_mb": 300.0 + 10 * seed, "config_hash": f"hash-{method}", "code_version": "abc123",
        "versions": {"numpy": np.__version__}, "device": "cpu", "generators_rounded": gens})


@pytest.fixture(scope="module")
def aggregated(tmp_path_factory):
    root = tmp_path_factory.mktemp("agg")
    for (method, seed), sim in SIMILARITY.items():
        fake_run(root / "runs", "two_body", method, seed, sim)
    agg.aggregate(root / "runs", root / "out", data_dir=root / "no_data")
    return root / "out"


def test_aggregate_writes_exactly_the_declared_files(aggregated):
    tasks = {"two_body": sorted({m for m, _ in SIMILARITY})}
    declared = {Path(f.png) for f in agg.figures_for(aggregated, tasks)}
    declared |= {Path(p) for p in agg.table_views(aggregated).values()}
    declared |= {Path(p) for p in agg.other_outputs(aggregated, tasks)}
    written = {p for p in aggregated.rglob("*") if p.is_file()}
    assert written == declared
    assert all(p.stat().st_size > 200 for p in written)


def test_tidy_and_summary_tables(aggregated):
    tidy = agg.read_tidy(aggregated / "tables/tidy.csv")
    assert list(tidy.columns) == agg.TIDY_COLUMNS
    assert (tidy.model == "").all() and len(tidy) == 2 * len(SIMILARITY)
    summary = pd.read_csv(aggregated / "tables/summary.csv", keep_default_na=False)
    row = summary[(summary.method == "liegan") & (summary.metric == "algebra_similarity")].iloc[0]
    assert row["mean"] == pytest.approx(0.98) and row.n == 2 and row.seeds == "0,1"
    assert row.ci_low <= row["mean"] <= row.ci_high


def test_discovery_view_marks_the_best_non_oracle_method(aggregated):
    md = (aggregated / "tables/discovery.md").read_text()
    liegan = next(line for line in md.splitlines() if line.startswith("| two_body | liegan"))
    oracle = next(line for line in md.splitlines() if line.startswith("| two_body | oracle"))
    assert "**0.98" in liegan and "**" not in oracle.split("|")[4]
    assert "95% CI" in md and "algebra_similarity" in md
    tex = (aggregated / "tables/discovery.tex").read_text()
    assert "\\toprule" in tex and "\\textbf{0.98" in tex and "algebra\\_similarity" in tex


def test_pairwise_table_compares_methods_on_shared_seeds(aggregated):
    pw = pd.read_csv(aggregated / "tables/pairwise.csv")
    row = pw[(pw.a == "liegan") & (pw.b == "augerino") & (pw.metric == "algebra_similarity")].iloc[0]
    assert row.difference == pytest.approx(0.98 - 0.65) and row.n_seeds == 2
    assert row.p_a_better == 1.0
    assert "closure_error" not in set(pw.metric)  # equal in every run: nothing to compare


def test_over_tasks_table(aggregated):
    ot = pd.read_csv(aggregated / "tables/over_tasks.csv")
    row = ot[ot.method == "liegan"].iloc[0]
    assert row.n_tasks == 1 and row.iqm_ci_low <= row.iqm <= row.iqm_ci_high


def test_reproduction_table_from_the_committed_paper_numbers(aggregated):
    rep = pd.read_csv(aggregated / "tables/reproduction.csv", keep_default_na=False)
    paper = load_paper_numbers()
    assert len(rep) >= len(paper)
    liegan = rep[(rep.task == "two_body") & (rep.method == "liegan") & (rep.metric == "algebra_similarity")]
    assert set(liegan.verdict) == {"worse"}  # 0.98 [0.97, 0.99] against 0.9998 and 0.9975
    assert set(rep[rep.task == "top_tagging"].verdict) == {"not run"}


def test_paper_numbers_file_is_well_formed():
    paper = load_paper_numbers(PAPER_NUMBERS)
    assert list(paper.columns) == PAPER_COLUMNS
    assert paper.value.notna().all() and (paper.source != "").all() and (paper.source_id != "").all()


def test_paper_numbers_errors_name_the_line(tmp_path):
    bad = tmp_path / "paper.csv"
    bad.write_text(",".join(PAPER_COLUMNS) + "\ntwo_body,t1,liegan,,,,algebra_similarity,high,,paper\n")
    with pytest.raises(UserError, match=r"line 2: column 'value' must be a number"):
        load_paper_numbers(bad)
    bad.write_text("task,value\n")
    with pytest.raises(UserError, match="missing columns"):
        load_paper_numbers(bad)


@pytest.mark.parametrize("value, mean, low, high, metric, expected", [
    (0.95, 0.96, 0.94, 0.98, "algebra_similarity", "inside"),
    (0.90, 0.96, 0.94, 0.98, "algebra_similarity", "better"),
    (0.99, 0.96, 0.94, 0.98, "algebra_similarity", "worse"),
    (1e-4, 1e-5, 5e-6, 2e-5, "test_mse", "better"),
    (1e-6, 1e-5, 5e-6, 2e-5, "test_mse", "worse"),
    (3.0, 1.0, 0.5, 1.5, "recovered_angle_deg", "outside"),
])
def test_verdicts(value, mean, low, high, metric, expected):
    assert verdict(value, mean, low, high, metric) == expected


def test_reproduction_matches_only_on_the_keys_the_paper_row_gives():
    summary = pd.DataFrame([
        {"task": "t", "method": "liegan", "model": "aug", "symmetry": "liegan", "split": "test", "metric": "test_mse",
         "n": 3, "seeds": "0,1,2", "mean": 1e-5, "ci_low": 5e-6, "ci_high": 2e-5},
        {"task": "t", "method": "liegan", "model": "emlp", "symmetry": "liegan", "split": "test", "metric": "test_mse",
         "n": 3, "seeds": "0,1,2", "mean": 3e-5, "ci_low": 2e-5, "ci_high": 4e-5}])
    paper = pd.DataFrame([
        {"task": "t", "source_id": "Tab. 1", "method": "liegan", "model": "aug", "symmetry": "", "split": "",
         "metric": "test_mse", "value": 1e-5, "spread": float("nan"), "source": "paper"},
        {"task": "t", "source_id": "Tab. 1", "method": "liegan", "model": "", "symmetry": "", "split": "",
         "metric": "test_mse", "value": 1e-6, "spread": float("nan"), "source": "paper"},
        {"task": "u", "source_id": "Tab. 2", "method": "liegan", "model": "", "symmetry": "", "split": "",
         "metric": "auc", "value": 0.98, "spread": 0.001, "source": "paper"}])
    rep = reproduction_table(summary, paper)
    assert list(rep.verdict) == ["inside", "worse", "worse", "not run"]
    assert list(rep.model[:3]) == ["aug", "aug", "emlp"]


def test_best_mask_groups_directions_and_ties():
    values = pd.DataFrame({"sim": [0.9, 0.8, 0.5, 0.7], "mse": [1.0, 2.0, 3.0, 3.0], "n": [1, 2, 3, 4],
                           "same": [0.0, 0.0, 1.0, 2.0]})
    groups = pd.Series(["a", "a", "b", "b"])
    mask = best_mask(values, groups, {"sim": True, "mse": False, "n": None, "same": False})
    assert mask.sim.tolist() == [True, False, False, True]
    assert mask.mse.tolist() == [True, False, False, False]  # group b ties at 3.0: nothing marked
    assert not mask.n.any()
    assert mask.same.tolist() == [False, False, True, False]
    eligible = pd.Series([False, True, True, True])
    assert best_mask(values, groups, {"sim": True}, eligible).sim.tolist() == [False, False, False, True]


def test_table_renderers_escape_and_bold():
    cells = pd.DataFrame({"name": ["a_b", "c|d"], "value": ["1 ± 0.1 [0.9, 1.1]", "50%"]})
    bold = pd.DataFrame({"name": [False, False], "value": [True, False]})
    table = Table(cells, bold, "T", "note & more")
    md = table.markdown()
    assert "**1 ± 0.1 [0.9, 1.1]**" in md and "c\\|d" in md
    tex = table.latex("t")
    assert "\\textbf{1 $\\pm$ 0.1 [0.9, 1.1]}" in tex and "a\\_b" in tex and "50\\%" in tex and "note \\& more" in tex
    html = table.html()
    assert "<b>1 ± 0.1 [0.9, 1.1]</b>" in html and "<!DOCTYPE html>" in html
    assert latex_escape("x^2 ~ {y} #1 $") == "x\\textasciicircum{}2 \\textasciitilde{} \\{y\\} \\#1 \\$"


def test_collect_runs_reads_downstream_runs_too(tmp_path):
    fake_run(tmp_path, "two_body", "liegan", 0, 0.9)
    write_json(tmp_path / "top_tagging/downstream/liegnn/true/seed0/metrics.json", {
        "rows": [{"task": "top_tagging", "method": "", "model": "liegnn", "symmetry": "true", "seed": 0,
                  "split": "test", "metric": "auc", "value": 0.98}],
        "task": "top_tagging", "seed": 0, "run_seconds": 5.0, "peak_memory_mb": 400.0, "config_hash": "h",
        "code_version": "abc123"})
    tidy, runs = agg.collect_runs(tmp_path)
    assert sorted(r["stage"] for r in runs) == ["discover", "downstream"]
    auc = tidy[tidy.metric == "auc"].iloc[0]
    assert auc.model == "liegnn" and auc.method == "" and auc.value == pytest.approx(0.98)
