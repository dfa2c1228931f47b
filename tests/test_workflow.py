"""The whole pipeline on the tiny profile, in a temp directory: outputs, rerun behaviour."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _profile(tmp: Path, seeds: list[int]) -> Path:
    prof = yaml.safe_load((ROOT / "benchmarks/profiles/tiny.yaml").read_text())
    prof["benchmarks_dir"] = str(ROOT / "benchmarks")
    prof["seeds"] = seeds
    path = tmp / "profile.yaml"
    path.write_text(yaml.safe_dump(prof))
    return path


def _snakemake(tmp: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(tmp), "--cores", "2",
           "--configfile", str(profile), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def _planned(out: str) -> dict[str, int]:
    """Job counts per rule from a dry run's summary table."""
    counts = {}
    for line in out.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wf")
    profile = _profile(tmp, [0, 1])
    res = _snakemake(tmp, profile)
    assert res.returncode == 0, res.stderr[-3000:]
    return tmp


def test_tables_and_figures_exist_with_finite_numbers(finished_run):
    res = finished_run / "results"
    tidy = pd.read_csv(res / "tables/discovery.csv")
    assert set(tidy.columns) >= {"task", "method", "model", "symmetry", "seed", "split", "metric", "value"}
    sim = tidy[(tidy.metric == "algebra_similarity") & (tidy.method == "liegan")]
    assert sorted(sim.seed) == [0, 1]
    assert np.isfinite(tidy.value).all()
    assert (sim.value >= 0).all() and (sim.value <= 1).all()
    summary = pd.read_csv(res / "tables/discovery_summary.csv")
    assert np.isfinite(summary[["mean", "std", "ci_low", "ci_high"]].to_numpy()).all()
    md = (res / "tables/discovery.md").read_text()
    assert "algebra_similarity" in md and "95% CI" in md
    for stem in ("similarity_two_body", "generators_two_body_liegan"):
        for ext in ("png", "pdf"):
            assert (res / f"figures/{stem}.{ext}").stat().st_size > 1000
    run = res / "runs/two_body/discover/liegan/seed0"
    with np.load(run / "generators.npz", allow_pickle=False) as z:
        assert z["generators"].shape == (1, 8, 8)
    meta = json.loads((run / "metrics.json").read_text())
    assert {"config_hash", "code_version", "versions", "seed", "device"} <= set(meta)
    assert (run / "log.csv").read_text().startswith("epoch,")


def test_rerun_plans_nothing_and_new_seed_plans_only_its_jobs(finished_run):
    profile = _profile(finished_run, [0, 1])
    dry = _snakemake(finished_run, profile, "-n")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr
    profile = _profile(finished_run, [0, 1, 2])
    dry = _snakemake(finished_run, profile, "-n")
    planned = _planned(dry.stdout + dry.stderr)
    methods = pd.read_csv(finished_run / "results/tables/discovery.csv").method.nunique()
    assert planned.get("discover") == methods, planned  # one job per method, for the new seed only
    assert planned.get("aggregate") == 1
    assert "generate" not in planned and "task_config" not in planned
