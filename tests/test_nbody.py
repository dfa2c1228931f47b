"""The 2-body and 3-body generators: conservation laws, centre of mass, split, shapes; the published file."""
from pathlib import Path

import numpy as np
import pytest

from liegan_core.data import generate, load
from liegan_core.data.nbody import (
    angular_momentum, conservation_report, corrupted_trajectories, energy, load_hnn_trajectories,
)
from liegan_core.lie import expm

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "reference-data" / "two_body_orbits_hnn.npz"
SMALL = {"n_train_orbits": 40, "n_test_orbits": 30}


@pytest.fixture(scope="module")
def two_body():
    return generate("two_body", SMALL, 0)


def _trajectories(ds, bodies):
    # consecutive windows of one orbit: x[t] for each window of orbit 0, then the last y
    orbit = ds.extras["orbit"]
    rows = np.flatnonzero(orbit == 0)
    return np.concatenate([ds.x[rows, 0], ds.y[rows[-1:], 0]])[None]


@pytest.mark.parametrize("task,bodies", [("two_body", 2), ("three_body", 3)])
def test_conservation_and_centre_of_mass(task, bodies):
    ds = generate(task, SMALL, 1)
    cons = ds.meta["conservation"]
    assert cons["energy_drift"] < 1e-6, "energy conserved along each orbit to 1e-6"
    assert cons["angular_momentum_drift"] < 1e-6
    assert cons["com_max"] < 1e-9, "centre of mass stays at the origin"
    assert ds.x.shape[-1] == 4 * bodies
    assert ds.true_algebra.shape == (1, 4 * bodies, 4 * bodies)


def test_two_body_matches_published_scales(two_body):
    s = two_body.x[:, 0]
    e = energy(s, 2)
    am = angular_momentum(s, 2)
    # published file: energy in about [-0.167, -0.083], angular momentum in about [1.22, 1.73]
    assert e.min() > -0.1668 and e.max() < -0.0832
    assert am.min() > 1.22 and am.max() < 1.735
    sep = np.linalg.norm(s[:, 0:2] - s[:, 4:6], axis=1)
    assert sep.min() > 2.9 and sep.max() < 6.1
    assert (am > 0).all(), "counter-clockwise"


def test_angle_split(two_body):
    ang = two_body.extras["initial_angle_deg"]
    assert (ang[two_body.splits["train"]] < 0).all()
    assert (ang[two_body.splits["test"]] >= 0).all()
    # 18 windows per orbit at lengths 1 -> 1, as the published loader
    assert len(two_body.splits["train"]) == 40 * 18


def test_windows_are_consecutive_steps(two_body):
    ds = generate("two_body", {**SMALL, "input_steps": 5, "output_steps": 5, "drop_last_window": False}, 0)
    assert ds.x.shape[1:] == (5, 8) and ds.y.shape[1:] == (5, 8)
    assert np.allclose(ds.x[1, :4], ds.x[0, 1:])
    assert np.allclose(ds.y[0, 0], ds.x[5, 0]) or np.allclose(ds.y[0, 0], ds.x[1, 4])


def test_rotation_is_a_symmetry_of_the_dynamics():
    """Rotating an initial state and integrating = integrating and rotating (SO(2) equivariance)."""
    from liegan_core.data.nbody import simulate

    rng = np.random.default_rng(3)
    q0 = np.array([[[2.0, 0.0], [-2.0, 0.0]]])
    p0 = np.array([[[0.0, 0.35], [0.0, -0.35]]])
    traj = simulate(q0, p0, 10, 0.4, 1e-10, 1e-10)
    r = expm(rng.normal() * np.array([[0.0, -1.0], [1.0, 0.0]]))
    traj_r = simulate(q0 @ r.T, p0 @ r.T, 10, 0.4, 1e-10, 1e-10)
    rotated = (traj.reshape(1, 10, 4, 2) @ r.T).reshape(1, 10, 8)
    assert np.allclose(rotated, traj_r, atol=1e-7)


def test_same_seed_same_data_and_save_load(tmp_path, two_body):
    again = generate("two_body", SMALL, 0)
    assert np.array_equal(again.x, two_body.x)
    other = generate("two_body", SMALL, 1)
    assert not np.allclose(other.x[:10], two_body.x[:10])
    two_body.save(tmp_path / "d.npz")
    back = load(tmp_path / "d.npz")
    assert np.array_equal(back.x, two_body.x) and np.array_equal(back.true_algebra, two_body.true_algebra)
    assert back.meta["generator"] == "two_body"


def test_random_split_option():
    ds = generate("two_body", {**SMALL, "split": "random"}, 0)
    ang = ds.extras["initial_angle_deg"][ds.splits["train"]]
    assert (ang < 0).any() and (ang > 0).any()


@pytest.mark.skipif(not SHARED.exists(), reason="shared reference data not present")
def test_published_file_loader_flags_the_three_corrupted_orbits():
    arrays = load_hnn_trajectories(SHARED)
    assert arrays["train"].shape == (814, 20, 8)
    bad = corrupted_trajectories(arrays["train"], 2, 1e-4)
    assert bad.tolist() == [261, 314, 603]
    clean = np.delete(arrays["train"], bad, axis=0)
    assert conservation_report(clean, 2)["energy_drift"].max() < 1e-5
    ds = generate("two_body_file", {"path": str(SHARED)}, 0)
    assert len(ds.splits["train"]) == (814 - 3) * 18
    assert ds.meta["corrupted_train_trajectories"] == [261, 314, 603]


@pytest.mark.skipif(not SHARED.exists(), reason="shared reference data not present")
def test_generated_data_same_kind_as_published():
    pub = load_hnn_trajectories(SHARED)["train"]
    ours = generate("two_body", {"n_train_orbits": 200, "n_test_orbits": 10}, 0).x[:, 0]
    for f in (energy, angular_momentum):
        a, b = f(pub.reshape(-1, 8), 2), f(ours, 2)
        assert abs(np.median(a) - np.median(b)) < 0.1 * abs(np.median(a))
