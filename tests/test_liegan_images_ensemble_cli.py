"""LieGAN on images (conv discriminator, Fourier regulariser), seeds in one process (`--seeds`, the
pipeline's ensemble rule), and task-mode method flags on `liegan discover`."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from liegan_core.cli import main
from liegan_core.data import generate
from liegan_core.errors import UserError
from liegan_core.methods import Budget, RunContext, SearchSpace, get_method

ROOT = Path(__file__).resolve().parents[1]
needs_sklearn = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn not installed")
AFFINE = SearchSpace(n=3, channels=1, mask=np.array([[1, 1, 1], [1, 1, 1], [0, 0, 0]]))


@pytest.fixture(scope="module")
def digits():
    return generate("rotated_digits", {"n_samples": 160, "upsample_size": 12}, 0)


def _fit_images(ds, epochs, seed=0, workdir=None, **params):
    torch.set_num_threads(1)
    return get_method("liegan").fit(ds.split("train"), AFFINE, Budget(epochs=epochs, batch_size=32), seed,
                                    {"identity_regulariser": "fourier", "discriminator": "conv", **params},
                                    RunContext(workdir=workdir, checkpoint_every=1))


@needs_sklearn
def test_images_train_deterministically_and_resume_identically(digits, tmp_path):
    a = _fit_images(digits, 2, seed=3)
    b = _fit_images(digits, 2, seed=3)
    c = _fit_images(digits, 2, seed=4)
    assert a.generators.shape == (1, 3, 3) and np.all(a.generators[0, 2] == 0)  # the mask keeps it affine
    assert np.array_equal(a.generators, b.generators) and not np.allclose(a.generators, c.generators)
    assert len(a.log) == 2 and np.isfinite([r["loss_discriminator"] for r in a.log]).all()
    assert a.log[0]["regulariser_identity"] > 0
    part = tmp_path / "run"
    part.mkdir()
    _fit_images(digits, 1, seed=3, workdir=str(part))
    resumed = _fit_images(digits, 2, seed=3, workdir=str(part))
    assert np.array_equal(resumed.generators, a.generators)
    assert [r["epoch"] for r in resumed.log] == [1, 2]


@needs_sklearn
def test_generator_learns_from_the_discriminator(digits):
    """The generator's blocks change under training (gradients reach them through grid sampling)."""
    torch.manual_seed(0)
    start = get_method("liegan").fit(digits.split("train"), AFFINE, Budget(epochs=0, batch_size=32), 5, {},
                                     RunContext()).generators
    trained = _fit_images(digits, 2, seed=5, lr_generator=1e-2).generators
    assert np.abs(trained - start).max() > 1e-3


@needs_sklearn
def test_settings_that_do_not_fit_the_data_are_user_errors(digits):
    with pytest.raises(UserError, match="discriminator: images need 'conv'"):
        _fit_images(digits, 1, discriminator="mlp")
    with pytest.raises(UserError, match="identity_regulariser"):
        _fit_images(digits, 1, identity_regulariser="pixels")
    two = generate("two_body", {"n_train_orbits": 5, "n_test_orbits": 2}, 0)
    space = SearchSpace(n=8, channels=1, block=2)
    for key, value in (("identity_regulariser", "fourier"), ("discriminator", "conv")):
        with pytest.raises(UserError, match=f"{key}: vector data"):
            get_method("liegan").fit(two.split("train"), space, Budget(epochs=1), 0, {key: value}, RunContext())


@pytest.fixture(scope="module")
def tiny_task(tmp_path_factory):
    """The tiny profile's two_body config and data, written as the pipeline writes them."""
    tmp = tmp_path_factory.mktemp("tiny")
    prof = yaml.safe_load((ROOT / "benchmarks/profiles/tiny.yaml").read_text())
    prof["overrides"]["two_body"]["data"]["params"] = {"n_train_orbits": 8, "n_test_orbits": 2}
    (tmp / "profile.yaml").write_text(yaml.safe_dump(prof))
    from liegan_core.config import resolve_task

    cfg = resolve_task(prof, "two_body", str(tmp / "profile.yaml"))
    (tmp / "cfg.json").write_text(json.dumps(cfg))
    assert main(["generate", "--config", str(tmp / "cfg.json"), "--out", str(tmp / "data.npz"), "--no-progress"]) == 0
    return tmp


def _discover(tmp: Path, *extra: str) -> int:
    return main(["discover", "--config", str(tmp / "cfg.json"), "--data", str(tmp / "data.npz"), "--threads", "1",
                 "--no-progress", *extra])


def test_seeds_in_one_process_equal_one_process_per_seed(tiny_task):
    for method in ("liegan", "liegg"):
        assert _discover(tiny_task, "--method", method, "--seeds", "0,2", "--out", str(tiny_task / f"ens_{method}")) == 0
        for seed in (0, 2):
            out = tiny_task / f"single_{method}{seed}"
            assert _discover(tiny_task, "--method", method, "--seed", str(seed), "--out", str(out)) == 0
            a = np.load(tiny_task / f"ens_{method}/seed{seed}/generators.npz")["generators"]
            b = np.load(out / "generators.npz")["generators"]
            assert np.array_equal(a, b), (method, seed)
            meta = json.loads((tiny_task / f"ens_{method}/seed{seed}/metrics.json").read_text())
            assert meta["seed"] == seed and meta["ensemble_size"] == (2 if method == "liegan" else 1)


def test_method_flags_change_a_task_run_and_own_data_flags_are_refused(tiny_task, capsys):
    out = tiny_task / "flags"
    assert _discover(tiny_task, "--method", "liegan", "--epochs", "3", "--set", "lambda_identity=0.5",
                     "--out", str(out)) == 0
    assert len((out / "log.csv").read_text().strip().splitlines()) == 1 + 3
    assert _discover(tiny_task, "--method", "liegan", "--block", "2", "--out", str(out)) == 2
    assert "--block: only for your own data" in capsys.readouterr().err
    assert _discover(tiny_task, "--method", "liegan", "--set", "lr_genrator=1", "--out", str(out)) == 2
    assert "did you mean 'lr_generator'" in capsys.readouterr().err
    for bad in ("0,0", "a", "-1"):
        assert _discover(tiny_task, "--method", "liegan", "--seeds", bad, "--out", str(out)) == 2
    assert _discover(tiny_task, "--method", "liegan", "--seed", "1", "--seeds", "0,1", "--out", str(out)) == 2


def test_dataset_never_overwrites_a_json_that_is_not_its_sidecar(tiny_task, capsys):
    mine = tiny_task / "mine.json"
    mine.write_text('{"task": "two_body"}')
    assert main(["generate", "--config", str(tiny_task / "cfg.json"), "--out", str(tiny_task / "mine.npz"),
                 "--no-progress"]) == 2
    assert "not a dataset sidecar" in capsys.readouterr().err
    assert mine.read_text() == '{"task": "two_body"}' and not (tiny_task / "mine.npz").exists()


def test_ensemble_profile_plans_one_job_per_task_and_method(tmp_path):
    prof = yaml.safe_load((ROOT / "benchmarks/profiles/tiny.yaml").read_text())
    prof.update(benchmarks_dir=str(ROOT / "benchmarks"), ensemble=True, seeds=[0, 1, 2])
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(prof))
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "-n",
                          "--cores", "2", "--configfile", str(tmp_path / "p.yaml")], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    counts = dict(line.split() for line in res.stdout.splitlines() if line.startswith(("discover ", "discover_ensemble ")))
    n_methods = len(yaml.safe_load((ROOT / "benchmarks/two_body.yaml").read_text())["methods"])
    assert counts == {"discover_ensemble": str(n_methods)}  # no per-seed discover job is left


@needs_sklearn
def test_image_seeds_in_one_call_are_each_their_own_run(digits, tmp_path):
    """Regression: the seeds of an image ensemble once shared a checkpoint, so seeds 1 and 2 copied seed 0."""
    params = {"identity_regulariser": "fourier", "discriminator": "conv"}
    torch.set_num_threads(1)
    together = get_method("liegan").fit_seeds(digits.split("train"), AFFINE, Budget(epochs=1, batch_size=32), [3, 4], params,
                         RunContext(workdir=str(tmp_path), checkpoint_every=1))
    for seed, disc in zip((3, 4), together):
        assert np.array_equal(disc.generators, _fit_images(digits, 1, seed=seed).generators)
        assert (tmp_path / f"seed{seed}" / "checkpoint.pt").exists()
    assert not np.allclose(together[0].generators, together[1].generators)


@needs_sklearn
def test_a_checkpoint_of_another_seed_is_never_resumed(digits, tmp_path, capsys):
    _fit_images(digits, 1, seed=3, workdir=str(tmp_path))
    reused = _fit_images(digits, 1, seed=4, workdir=str(tmp_path))
    assert np.array_equal(reused.generators, _fit_images(digits, 1, seed=4).generators)
    assert "written by a run with another seed" in capsys.readouterr().err
