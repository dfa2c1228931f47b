"""Fault handling: numerical guards, kill-and-resume, atomic outputs (issue: reliable runs)."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from liegan_core.data import generate
from liegan_core.methods import Budget, RunContext, SearchSpace, get_method
from liegan_core.training import NumericalError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_two_body():
    return generate("two_body", {"n_train_orbits": 30, "n_test_orbits": 5}, 0)


def test_exploding_generator_stops_with_named_quantity(tiny_two_body):
    space = SearchSpace(n=8, channels=1, block=2)
    with pytest.raises(NumericalError) as err:
        get_method("liegan").fit(tiny_two_body.split("train"), space, Budget(epochs=2, batch_size=64), 0,
                                 {"init_scale": 1e4, "discriminator_hidden": [16]}, RunContext())
    msg = str(err.value)
    assert "non-finite" in msg and "epoch 0" in msg and "step 0" in msg and "generator norm" in msg


def test_exponent_clipping_is_counted(tiny_two_body):
    space = SearchSpace(n=8, channels=1, block=2)
    disc = get_method("liegan").fit(tiny_two_body.split("train"), space, Budget(epochs=1, batch_size=64), 0,
                                    {"init_scale": 1e4, "max_exponent_norm": 5.0, "discriminator_hidden": [16]},
                                    RunContext())
    assert disc.info["clip_events"] > 0
    assert np.isfinite(disc.generators).all()


def test_numerical_failure_writes_no_result(tmp_path, tiny_two_body):
    data = tmp_path / "d.npz"
    tiny_two_body.save(data)
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    task = yaml.safe_load((ROOT / "benchmarks/two_body.yaml").read_text())
    task["methods"] = {"liegan": {"epochs": 1, "init_scale": 1e4, "discriminator_hidden": [16]}}
    (bench / "two_body.yaml").write_text(yaml.safe_dump(task))
    prof = tmp_path / "p.yaml"
    prof.write_text(yaml.safe_dump({"tasks": ["two_body"], "seeds": [0], "benchmarks_dir": str(bench)}))
    out = tmp_path / "run"
    res = subprocess.run([sys.executable, "-m", "liegan_core.cli", "discover", "--task", "two_body", "--profile",
                          str(prof), "--data", str(data), "--out", str(out)], capture_output=True, text=True)
    assert res.returncode != 0
    assert "numerical error" in res.stderr and "Traceback" not in res.stderr
    assert not (out / "metrics.json").exists() and not (out / "generators.npz").exists()


def _resumable_setup(tmp_path, tiny_two_body, epochs):
    data = tmp_path / "d.npz"
    tiny_two_body.save(data)
    bench = tmp_path / "benchmarks"
    bench.mkdir(exist_ok=True)
    task = yaml.safe_load((ROOT / "benchmarks/two_body.yaml").read_text())
    task["methods"] = {"liegan": {"epochs": epochs, "discriminator_hidden": [16]}}
    (bench / "two_body.yaml").write_text(yaml.safe_dump(task))
    prof = tmp_path / "p.yaml"
    prof.write_text(yaml.safe_dump({"tasks": ["two_body"], "seeds": [0], "benchmarks_dir": str(bench),
                                    "checkpoint_every": 5}))
    return data, prof


def _cmd(data, prof, out):
    return [sys.executable, "-m", "liegan_core.cli", "discover", "--task", "two_body", "--profile", str(prof),
            "--data", str(data), "--out", str(out), "--threads", "1", "--no-progress"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_run_resumes_from_checkpoint_to_identical_result(tmp_path, tiny_two_body, sig):
    data, prof = _resumable_setup(tmp_path, tiny_two_body, epochs=60)
    ref = tmp_path / "ref"
    subprocess.run(_cmd(data, prof, ref), check=True, capture_output=True)
    out = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(data, prof, out), stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (out / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "run ended before it could be interrupted"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert not (out / "metrics.json").exists(), "an interrupted run must not look finished"
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert not leftovers, f"temp files left behind: {leftovers}"
    subprocess.run(_cmd(data, prof, out), check=True, capture_output=True)
    with np.load(ref / "generators.npz") as a, np.load(out / "generators.npz") as b:
        assert np.array_equal(a["generators"], b["generators"])
    log = (out / "log.csv").read_text().splitlines()
    assert len(log) == 61 and log[-1].startswith("60,")
    a, b = json.loads((ref / "metrics.json").read_text()), json.loads((out / "metrics.json").read_text())
    assert a["rows"] == b["rows"]
