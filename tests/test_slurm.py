"""The cluster path: the SLURM profiles' dry run (no cluster needed), GPU choice per job, and a real
one-node SLURM cluster (tests/slurm/run_local_slurm.sh; only with LIEGAN_TEST_SLURM=1, as root)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "workflow/profiles"


def _planned(out: str) -> dict[str, int]:
    """Job counts per rule from a dry run's summary table."""
    counts = {}
    for line in out.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m:
            counts[m.group(1)] = int(m.group(2))
    return counts


def _dry_run(tmp: Path, profile: str, benchmark_profile: str) -> str:
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[slurm]'")
    prof = yaml.safe_load((ROOT / f"benchmarks/profiles/{benchmark_profile}.yaml").read_text())
    prof["benchmarks_dir"] = str(ROOT / "benchmarks")
    config = tmp / f"{benchmark_profile}.yaml"
    config.write_text(yaml.safe_dump(prof))
    cmd = [sys.executable, "-m", "snakemake", "-n", "--profile", str(PROFILES / profile),
           "-s", str(ROOT / "Snakefile"), "-d", str(tmp), "--configfile", str(config)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout + res.stderr


def _discover_jobs(out: str) -> list[str]:
    """The dry run's text block of every discover job."""
    return [block for block in re.split(r"\n(?=\[)", out) if "rule discover:" in block]


def test_slurm_dry_run_of_paper_profile_lists_every_job_with_its_resources(tmp_path):
    out = _dry_run(tmp_path, "slurm", "paper")
    assert "Using profile" in out and "profiles/slurm" in out
    planned = _planned(out)
    paper = yaml.safe_load((ROOT / "benchmarks/profiles/paper.yaml").read_text())
    assert planned["discover"] > 0 and planned["discover"] % len(paper["seeds"]) == 0, planned
    assert planned["total"] == sum(n for rule, n in planned.items() if rule != "total")
    jobs = _discover_jobs(out)
    assert len(jobs) == planned["discover"]
    wanted = yaml.safe_load((PROFILES / "slurm/config.yaml").read_text())["set-resources"]["discover"]
    for job in jobs:
        resources = re.search(r"resources: (.*)", job).group(1)
        for key in ("mem_mb", "runtime"):                            # first attempt
            assert f"{key}={eval(str(wanted[key]), {'attempt': 1})}" in resources, resources
        assert f"cpus_per_task={paper['threads']}" in resources, resources  # = torch threads
        assert f"--threads {paper['threads']}" in job
        assert "gpu=" not in resources


def test_no_job_of_the_tiny_profile_asks_for_more_cpus_than_the_local_test_node_has(tmp_path):
    """The local-SLURM test runs on one 2-CPU node: a job asking for more would wait forever."""
    out = _dry_run(tmp_path, "slurm", "tiny")
    asked = [int(n) for n in re.findall(r"cpus_per_task=(\d+)", out)]
    assert asked and max(asked) <= 2, sorted(set(asked))


def test_slurm_gpu_profile_asks_one_gpu_per_training_job(tmp_path):
    out = _dry_run(tmp_path, "slurm-gpu", "tiny")
    jobs = _discover_jobs(out)
    assert jobs
    for job in jobs:
        resources = re.search(r"resources: (.*)", job).group(1)
        wants_gpu = "method=oracle" not in job                   # the oracle does not train
        assert ("gpu=1" in resources) == wants_gpu, job


def test_slurm_gpu_profile_is_the_slurm_profile_plus_gpus():
    cpu = yaml.safe_load((PROFILES / "slurm/config.yaml").read_text())
    gpu = yaml.safe_load((PROFILES / "slurm-gpu/config.yaml").read_text())
    asked = [rule for rule, resources in gpu["set-resources"].items() if resources.pop("gpu", None)]
    assert {"discover", "downstream"} <= set(asked)
    assert gpu == cpu


def test_default_profile_runs_locally():
    prof = yaml.safe_load((PROFILES / "default/config.yaml").read_text())
    assert "executor" not in prof and prof["cores"] >= 1


def test_gpu_index_gives_concurrent_processes_different_gpus(monkeypatch, tmp_path):
    import fcntl

    import torch

    from liegan_core import training

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.setenv("LIEGAN_GPU_LOCK_DIR", str(tmp_path))
    monkeypatch.delenv("LIEGAN_GPU_ID", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6")
    monkeypatch.setattr(training, "_GPU_CLAIM", None)
    with open(tmp_path / "liegan-gpu4.lock", "a") as other:      # another job holds physical GPU 4
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert training.resolve_device("cuda") == torch.device("cuda", 1)
        assert training.resolve_device("auto") == torch.device("cuda", 1)   # the claim is kept
    first = training._GPU_CLAIM                                     # still holds physical GPU 5
    monkeypatch.setattr(training, "_GPU_CLAIM", None)                # a second process: 4 is free now
    assert training.gpu_index() == 0
    second = training._GPU_CLAIM
    monkeypatch.setattr(training, "_GPU_CLAIM", None)                # a third: 4 and 5 held
    assert training.gpu_index() == 2
    del first, second
    assert training.resolve_device("cuda:2") == torch.device("cuda", 2)
    monkeypatch.setenv("LIEGAN_GPU_ID", "2")
    assert training.gpu_index() == 2
    monkeypatch.setenv("LIEGAN_GPU_ID", "3")
    with pytest.raises(RuntimeError, match="LIEGAN_GPU_ID=3"):
        training.gpu_index()
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)      # SLURM --gpus=1: one visible
    monkeypatch.delenv("LIEGAN_GPU_ID")
    assert training.gpu_index() == 0


@pytest.mark.slurm
@pytest.mark.skipif(os.environ.get("LIEGAN_TEST_SLURM") != "1",
                    reason="starts a real SLURM cluster as root: set LIEGAN_TEST_SLURM=1")
def test_tiny_profile_on_a_local_slurm_cluster_matches_a_local_run():
    proc = subprocess.Popen(["bash", str(ROOT / "tests/slurm/run_local_slurm.sh")], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHON": sys.executable})
    try:
        out, err = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        proc.terminate()                     # SIGTERM: the script stops its runs and daemons
        out, err = proc.communicate(timeout=120)
    print(err[-3000:])                       # the script's timings, shown with pytest -s or -rA
    assert proc.returncode == 0, (out + err)[-6000:]
    assert "values identical in the local and the SLURM run" in out
