"""`liegan compare`: a reference snapshot, a matching run passing, and differences named precisely."""
import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from liegan_core.errors import UserError
from liegan_core.io import write_json, write_text
from liegan_core.report import compare
from liegan_core.report.aggregate import read_tidy

ROOT = Path(__file__).resolve().parents[1]


def _cli(*argv: str) -> None:
    """Run the compare subcommand through its own parser, as `liegan compare ...` does."""
    parser = argparse.ArgumentParser(prog="liegan")
    compare.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["compare", *argv])
    args.func(args)


def _fake_results(root: Path) -> Path:
    """A results folder with a tidy table, a resolved config naming the profile and one run record."""
    rows = [{"task": "two_body", "method": m, "model": "", "symmetry": "data", "seed": s, "split": "train",
             "metric": "algebra_similarity", "value": v, "run_seconds": 1.0, "peak_memory_mb": 300.0,
             "config_hash": f"h-{m}", "code_version": "abc123"}
            for (m, s), v in {("liegan", 0): 0.991234567891, ("liegan", 1): 0.97, ("oracle", 0): 1.0,
                              ("oracle", 1): 1.0}.items()]
    write_text(root / "tables/tidy.csv", pd.DataFrame(rows).to_csv(index=False))
    write_text(root / "figures/similarity_two_body.png", "not really a png")
    write_json(root / "config/two_body.json", {"task": "two_body", "_profile": {"profile": "tiny"}})
    write_json(root / "runs/two_body/discover/liegan/seed0/metrics.json",
               {"code_version": "abc123", "versions": {"numpy": "2.0"}, "device": "cpu"})
    return root


def _edit_tidy(results: Path, edit) -> None:
    tidy = read_tidy(results / "tables/tidy.csv")
    write_text(results / "tables/tidy.csv", edit(tidy).to_csv(index=False))


@pytest.fixture
def reference_and_results(tmp_path):
    results = _fake_results(tmp_path / "results")
    _cli("--results", str(results), "--snapshot")  # default destination: results/reference/<profile>
    return results / "reference" / "tiny", results


def test_snapshot_holds_tables_figures_and_environment(reference_and_results):
    reference, _ = reference_and_results
    assert (reference / "tables/tidy.csv").exists() and (reference / "figures/similarity_two_body.png").exists()
    env = json.loads((reference / "environment.json").read_text())
    assert env["profile"] == "tiny" and env["code_versions"] == ["abc123"]
    assert env["package_versions"] == {"numpy": "2.0"}
    assert {"cpu_model", "cpu_count", "torch_threads", "thread_env", "platform"} <= set(env)


def test_matching_results_pass(reference_and_results, capsys):
    reference, results = reference_and_results
    _cli("--reference", str(reference), "--results", str(results))
    out = capsys.readouterr().out
    assert "OK: 2 of 2 metrics match" in out and "exact" in out


def test_perturbed_value_fails_naming_task_method_metric_seed(reference_and_results, capsys):
    reference, results = reference_and_results
    _edit_tidy(results, lambda t: t.assign(value=t.value.where(~((t.method == "liegan") & (t.seed == 0)),
                                                                0.991234567892)))
    with pytest.raises(SystemExit) as exit_info:
        _cli("--reference", str(reference), "--results", str(results))
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert "DIFFERENT two_body / liegan / algebra_similarity seed 0 (symmetry data, split train)" in out
    assert "0.991234567891" in out and "0.991234567892" in out and "MISMATCH" in out
    # the same difference is within a relative tolerance of 1e-9
    _cli("--reference", str(reference), "--results", str(results), "--rtol", "1e-9")


def test_missing_rows_and_config_changes_fail_extra_rows_and_code_version_warn(reference_and_results):
    reference, results = reference_and_results
    _edit_tidy(results, lambda t: t[~((t.method == "oracle") & (t.seed == 1))])
    result = compare.compare(reference, results)
    assert not result.ok
    assert any("two_body / oracle / algebra_similarity seed 1" in d and "missing" in d
               for d in result.differences)

    tidy = read_tidy(reference / "tables/tidy.csv")
    extra = tidy.iloc[[0]].assign(seed=7)
    write_text(results / "tables/tidy.csv",
               pd.concat([tidy, extra]).assign(code_version="def456").to_csv(index=False))
    result = compare.compare(reference, results)
    assert result.ok
    assert any("not in the reference" in w for w in result.warnings)
    assert any("code version differs" in w for w in result.warnings)

    write_text(results / "tables/tidy.csv", tidy.assign(config_hash="other").to_csv(index=False))
    result = compare.compare(reference, results)
    assert not result.ok and all("different config" in d for d in result.differences)


def test_environment_warnings_name_what_differs():
    ref = {"package_versions": {"torch": "2.13.0", "numpy": "2.0"}, "cpu_model": "A", "torch_threads": 2}
    now = {"package_versions": {"torch": "2.14.1", "numpy": "2.0"}, "cpu_model": "B", "torch_threads": 2}
    warnings = compare.environment_warnings(ref, now)
    assert any("torch 2.13.0 -> 2.14.1" in w for w in warnings)
    assert any("CPU model differs" in w for w in warnings)
    assert not any("thread count" in w for w in warnings)


def test_missing_tables_are_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="tidy.csv: not found"):
        compare.compare(tmp_path / "ref", tmp_path / "results")
    with pytest.raises(UserError, match="cannot tell which profile"):
        _cli("--results", str(tmp_path / "results"))


@pytest.mark.slow
def test_rerun_on_the_tiny_profile_matches_its_reference_exactly(tmp_path):
    """Run the tiny pipeline, snapshot it, re-run one discovery job from scratch: the results must
    equal the reference exactly; a perturbed value must then fail, named by task/method/metric/seed."""
    prof = yaml.safe_load((ROOT / "benchmarks/profiles/tiny.yaml").read_text())
    prof.update(benchmarks_dir=str(ROOT / "benchmarks"), methods=["liegan", "oracle"], seeds=[0, 1])
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump(prof))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--cores", "2",
           "--configfile", str(profile)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    results = tmp_path / "results"
    compare.snapshot_reference(results, results / "reference" / "tiny")

    shutil.rmtree(results / "runs/two_body/discover/liegan/seed1")
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    result = compare.compare(results / "reference" / "tiny", results)
    assert result.ok, result.report()
    assert not any("package versions" in w or "code version" in w for w in result.warnings), result.warnings

    _edit_tidy(results, lambda t: t.assign(value=t.value.where(
        ~((t.method == "liegan") & (t.seed == 1) & (t.metric == "algebra_similarity")), t.value + 1e-12)))
    result = compare.compare(results / "reference" / "tiny", results)
    assert not result.ok
    assert result.differences[0].startswith("two_body / liegan / algebra_similarity seed 1")
