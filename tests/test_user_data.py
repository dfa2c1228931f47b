"""`liegan discover --data FILE` on the user's own data: loading, reps, comparison, summary, recovery."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch

from liegan_core.cli import main
from liegan_core.lie import so2_generator
from liegan_core.methods import available
from liegan_core.user_data import build_dataset, compare_algebra, normalised, parse_sets

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference-data" / "two_body_orbits_hnn.npz"
HNN_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]
# docs/own_data.md's settings for the CSV example: |cos| >= 0.998 on seeds 0-4, a few seconds of CPU each
DOC_CSV_SETTINGS = ["--epochs", "20", "--set", "lr_generator=0.01", "--set", "discriminator_hidden=[128, 128]"]
needs_reference = pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference-data is not present")


def rotation_invariant_csv(path: Path, rows: int = 2000, labels: bool = False) -> Path:
    """docs/own_data.md's example: x ~ N(0, I_2), y = sin(r) + r^2 / 4 (a function of r = |x| only)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 2))
    r = np.hypot(x[:, 0], x[:, 1])
    y = (r > 1).astype(float) if labels else np.sin(r) + r**2 / 4
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header="x1,x2,y", comments="", fmt="%.6f")
    return path


@pytest.fixture(autouse=True)
def restore_torch_threads() -> Iterator[None]:
    """The runs here pass --threads 1 (2 shared cores); later tests get torch's setting back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def similarity(run: Path) -> float:
    rows = json.loads((run / "metrics.json").read_text())["rows"]
    return next(r["value"] for r in rows if r["metric"] == "algebra_similarity")


def summary_matrix(text: str, title: str) -> np.ndarray:
    """The 2x2 matrix printed under the line starting with `title` in summary.txt."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(title))
    return np.array([[float(v) for v in re.findall(r"-?\d+\.\d+", lines[start + k])] for k in (1, 2)])


def test_csv_recovers_so2_and_writes_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = rotation_invariant_csv(tmp_path / "rot.csv")
    out = tmp_path / "run"
    rc = main(["discover", "--data", str(data), "--out", str(out), "--x-cols", "x1,x2", "--y-cols", "y",
               "--x-rep", "vector", "--x-dim", "2", "--y-rep", "scalar", "--compare", "so2",
               *DOC_CSV_SETTINGS, "--threads", "1", "--no-progress"])
    assert rc == 0
    assert similarity(out) >= 0.9
    assert {p.name for p in out.iterdir()} >= {"generators.npz", "metrics.json", "log.csv", "summary.txt"}
    text = (out / "summary.txt").read_text()
    assert capsys.readouterr().out == text
    for fragment in ("data: 2000 rows", "x: shape [2000, 1, 2], vector of dimension 2", "y: shape [2000, 1], scalar",
                     "columns x1,x2", "method: liegan, seed 0, 20 epochs, batch size 64", "'lr_generator': 0.01",
                     "compared with so2", "(|cos|)", "closes: yes (tolerance 0.1)"):
        assert fragment in text, fragment
    unit = summary_matrix(text, "L1 normalised")
    assert abs(np.linalg.norm(unit) - 1) < 0.01
    assert np.allclose(np.abs(unit), np.abs(so2_generator()) / np.sqrt(2), atol=0.15)
    raw = summary_matrix(text, "L1 raw")
    with np.load(out / "generators.npz") as z:
        assert np.allclose(raw, z["generators"][0], atol=6e-4)


@pytest.mark.skipif("liegg" not in available(), reason="LieGG is not registered")
def test_csv_liegg_recovers_so2(tmp_path: Path) -> None:
    data = rotation_invariant_csv(tmp_path / "rot.csv")
    out = tmp_path / "run"
    rc = main(["discover", "--data", str(data), "--out", str(out), "--x-cols", "x1,x2", "--y-cols", "y",
               "--method", "liegg", "--compare", "so2", "--epochs", "20", "--threads", "1", "--no-progress"])
    assert rc == 0 and similarity(out) >= 0.9


@needs_reference
def test_published_file_pairs_and_permutation(tmp_path: Path) -> None:
    with np.load(REFERENCE) as z:
        train = z["train"][:20]
    path = tmp_path / "orbits.npz"
    np.savez(path, train=train)
    spec = {"pairs_from_trajectories": "train", "permute": HNN_ORDER, "x": {"rep": "vector", "dim": 8},
            "y": {"rep": "vector"}}
    ds, origin = build_dataset(path, spec)
    assert ds.x.shape == ds.y.shape == (20 * 19, 1, 8)
    assert ds.x_rep == ds.y_rep == {"type": "vector", "n": 8}
    np.testing.assert_array_equal(ds.x[0, 0], train[0, 0, HNN_ORDER])
    np.testing.assert_array_equal(ds.y[0, 0], train[0, 1, HNN_ORDER])
    np.testing.assert_array_equal(ds.y[18, 0], train[0, 19, HNN_ORDER])
    np.testing.assert_array_equal(ds.x[19, 0], train[1, 0, HNN_ORDER])
    assert "array 'train' [20, 20, 8]" in origin["pairs"] and origin["columns reordered by"] == "0,2,4,6,1,3,5,7"


@pytest.mark.slow
@needs_reference
def test_published_file_recovers_so2(tmp_path: Path) -> None:
    """The docs/own_data.md command (10 epochs: |cos| 0.999 on seeds 0 and 1; about a minute on one thread)."""
    out = tmp_path / "run"
    rc = main(["discover", "--data", str(REFERENCE), "--out", str(out), "--pairs-from-trajectories", "train",
               "--permute", ",".join(map(str, HNN_ORDER)), "--x-rep", "vector", "--x-dim", "8", "--y-rep", "vector",
               "--block", "2", "--compare", "so2", "--epochs", "10", "--threads", "1", "--no-progress"])
    assert rc == 0 and similarity(out) >= 0.99
    assert "2x2 block repeated 4 times" in (out / "summary.txt").read_text()


def test_spec_file_with_flags_overriding(tmp_path: Path) -> None:
    data = rotation_invariant_csv(tmp_path / "rot.csv", rows=64)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "x: {rep: vector, dim: 2, columns: [x1, x2]}\n"
        "y: {rep: scalar, columns: [y]}\n"
        "search_space: {channels: 2, coefficients: {distribution: normal, sigma: 0.5}}\n"
        "method: {epochs: 3, batch_size: 32, discriminator_hidden: [16, 16]}\n"
        "compare: [so2]\n"
    )
    out = tmp_path / "run"
    assert main(["discover", "--data", str(data), "--out", str(out), "--spec", str(spec), "--epochs", "1",
                 "--compare", "gl", "--no-progress"]) == 0
    assert len((out / "log.csv").read_text().splitlines()) == 2  # header + the 1 epoch of --epochs
    with np.load(out / "generators.npz") as z:
        assert z["generators"].shape == (2, 2, 2)
    text = (out / "summary.txt").read_text()
    assert "compared with gl = gl(2)" in text and "compared with so2" not in text  # --compare replaces the spec's
    assert "2 channel(s)" in text and "'sigma': 0.5" in text and "'discriminator_hidden': [16, 16]" in text
    assert "closure_error" in text and "(tolerance 0.1)" in text


def test_rerun_with_other_settings_does_not_resume(tmp_path: Path) -> None:
    data = rotation_invariant_csv(tmp_path / "rot.csv", rows=64)
    out = tmp_path / "run"
    base = ["discover", "--data", str(data), "--out", str(out), "--x-cols", "x1,x2", "--y-cols", "y",
            "--set", "discriminator_hidden=[16, 16]", "--no-progress"]
    assert main([*base, "--epochs", "2"]) == 0
    assert main([*base, "--epochs", "1"]) == 0  # resuming the 2-epoch checkpoint would keep its 2 log rows
    assert len((out / "log.csv").read_text().splitlines()) == 2


def test_label_output(tmp_path: Path) -> None:
    data = rotation_invariant_csv(tmp_path / "rot.csv", rows=50, labels=True)
    ds, _ = build_dataset(data, {"x": {"columns": ["x1", "x2"]}, "y": {"rep": "label", "columns": ["y"]}})
    assert ds.y.dtype == np.int64 and ds.y.shape == (50,) and ds.y_rep == {"type": "label", "classes": 2}
    assert ds.x.shape == (50, 1, 2) and ds.n == 2


def test_compare_algebras_at_the_data_dimension(tmp_path: Path) -> None:
    assert compare_algebra("so2", 4)[1].shape == (1, 4, 4)
    assert compare_algebra("so3", 6)[1].shape == (3, 6, 6)
    assert compare_algebra("so13", 4)[1].shape == (6, 4, 4)
    assert compare_algebra("gl", 2)[1].shape == (4, 2, 2)
    np.savez(tmp_path / "gens.npz", generators=so2_generator()[None], blocks=np.zeros((1, 2, 2)))
    np.save(tmp_path / "one.npy", so2_generator())
    assert np.array_equal(compare_algebra(str(tmp_path / "gens.npz"), 2)[1], so2_generator()[None])
    assert compare_algebra(str(tmp_path / "one.npy"), 2)[1].shape == (1, 2, 2)


def test_normalised_sign_is_stable_under_ties() -> None:
    j = 3.0 * so2_generator()  # entries -3 (first in row-major order) and +3 tie in magnitude
    expected = np.array([[0.0, 1.0], [-1.0, 0.0]]) / np.sqrt(2)
    assert np.allclose(normalised(j), expected)
    assert np.allclose(normalised(-j * 1.001 + np.diag([0.0, 0.001])), expected, atol=1e-3)


def test_set_values_are_yaml_with_exponent_floats() -> None:
    parsed = parse_sets(["lr_generator=1e-3", "discriminator_hidden=[8, 8]", "fused_adam=false", "init_scale=2"])
    assert parsed == {"lr_generator": 1e-3, "discriminator_hidden": [8, 8], "fused_adam": False, "init_scale": 2}
