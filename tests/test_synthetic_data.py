"""Synthetic generators: shapes, determinism, and the symmetry claims checked numerically."""
from __future__ import annotations

import numpy as np
import pytest

from liegan_core.data import synthetic as syn
from liegan_core.errors import UserError
from liegan_core.lie import expm, so13_basis, so_basis

SMALL = {"n_samples": 500}
EXPECTED = {
    # name: (x shape after N, n, true_algebra shape)
    "discrete_rotation": ((3,), 3, (1, 3, 3)),
    "so3_invariant": ((3,), 3, (3, 3, 3)),
    "lorentz_invariant": ((2, 4), 4, (6, 4, 4)),
    "scaling_invariant": ((2,), 2, (1, 2, 2)),
}
GENERATORS = {
    "discrete_rotation": syn.discrete_rotation,
    "so3_invariant": syn.so3_invariant,
    "lorentz_invariant": syn.lorentz_invariant,
    "scaling_invariant": syn.scaling_invariant,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shapes_dtypes_splits_meta(name: str) -> None:
    ds = GENERATORS[name](SMALL, 0)
    tail, n, algebra_shape = EXPECTED[name]
    assert ds.x.shape == (500, *tail) and ds.x.dtype == np.float64
    assert ds.y.shape == (500, 1) and ds.y.dtype == np.float64
    assert ds.x_rep == {"type": "vector", "n": n} and ds.y_rep == {"type": "scalar"}
    assert ds.true_algebra.shape == algebra_shape
    train, test = ds.splits["train"], ds.splits["test"]
    assert train.dtype == np.int64 and test.dtype == np.int64
    assert len(test) == 100 and len(np.union1d(train, test)) == 500
    assert ds.meta["generator"] == name and ds.meta["seed"] == 0
    assert ds.meta["symmetry_function"] and ds.meta["symmetry_data"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_deterministic_in_seed(name: str) -> None:
    a, b, c = (GENERATORS[name](SMALL, s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.splits["test"], b.splits["test"])
    assert not np.array_equal(a.x, c.x)


def test_registered_and_saveable(tmp_path) -> None:
    from liegan_core.data import GENERATORS as REGISTRY
    from liegan_core.data import load

    assert set(EXPECTED) <= set(REGISTRY)
    ds = syn.lorentz_invariant(SMALL, 1)
    ds.save(tmp_path / "l.npz")
    back = load(tmp_path / "l.npz")
    np.testing.assert_array_equal(back.x, ds.x)
    assert back.meta["data_algebra"] == "so3_in_so13"


def test_bad_params_are_user_errors() -> None:
    with pytest.raises(UserError, match="unknown key"):
        syn.discrete_rotation({"n_sample": 10}, 0)
    with pytest.raises(UserError, match="positive integer"):
        syn.so3_invariant({"n_samples": 0}, 0)
    with pytest.raises(UserError, match="test_fraction"):
        syn.so3_invariant({"test_fraction": 1.0}, 0)
    with pytest.raises(UserError, match="radius_range"):
        syn.scaling_invariant({"radius_range": [0.0, 1.0]}, 0)
    with pytest.raises(UserError, match="unknown data algebra"):
        syn.data_algebra("so4")


def test_discrete_rotation_formula_and_c7_invariance() -> None:
    ds = syn.discrete_rotation({"n_samples": 2000}, 0)
    x, y = ds.x, ds.y[:, 0]
    step = ds.meta["discrete_step"]
    assert step == pytest.approx(2 * np.pi / 7)
    theta = np.arctan2(x[:, 1], x[:, 0])
    np.testing.assert_allclose(y, x[:, 2] / (1 + np.mod(theta, step)), rtol=0, atol=0)
    # Away from the cut of `mod` (phase near 0 or step), rotating by multiples of the step keeps y.
    phase = np.mod(theta, step)
    ok = (phase > 1e-6) & (phase < step - 1e-6)
    assert ok.mean() > 0.99
    gen = ds.true_algebra[0]
    for m in range(1, 7):
        xr = x @ expm(m * step * gen).T
        np.testing.assert_allclose(syn.discrete_rotation_function(xr, 7)[ok], y[ok], rtol=0, atol=1e-9)
    # ...but not under a rotation that is not in C7: the symmetry is discrete.
    xr = x @ expm(0.5 * step * gen).T
    assert np.abs(syn.discrete_rotation_function(xr, 7) - y).max() > 0.1


def test_discrete_rotation_true_algebra_rotates_about_x3() -> None:
    gen = syn.discrete_rotation({"n_samples": 10}, 0).true_algebra[0]
    np.testing.assert_array_equal(gen, so_basis(3)[0])
    np.testing.assert_allclose(expm(np.pi / 2 * gen) @ [1.0, 0.0, 5.0], [0.0, 1.0, 5.0], atol=1e-12)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    return expm(np.tensordot(rng.normal(size=3) * 2, so_basis(3), axes=1))


def test_so3_function_invariant_under_rotations() -> None:
    rng = np.random.default_rng(0)
    ds = syn.so3_invariant(SMALL, 0)
    for _ in range(5):
        r = random_rotation(rng)
        np.testing.assert_allclose(syn.so3_function(ds.x @ r.T), ds.y[:, 0], rtol=0, atol=1e-12)


def test_lorentz_invariant_mass_under_boosts_and_rotations() -> None:
    rng = np.random.default_rng(1)
    ds = syn.lorentz_invariant(SMALL, 0)
    x, y = ds.x, ds.y[:, 0]
    # on shell with the drawn masses in range, and y >= m1 + m2 > 0
    masses = np.sqrt(x[..., 0] ** 2 - (x[..., 1:] ** 2).sum(-1))
    assert masses.min() >= 0.1 - 1e-9 and masses.max() <= 1.0 + 1e-9
    assert np.all(y >= masses.sum(-1) - 1e-9)
    for _ in range(5):
        lam = expm(np.tensordot(rng.normal(size=6), so13_basis(), axes=1))
        np.testing.assert_allclose(syn.invariant_mass(x @ lam.T), y, rtol=1e-9)
    # The data law is not boost-invariant: a boost along z shifts the mean pz; a rotation does not.
    boost = expm(1.0 * so13_basis()[2])
    assert abs((x @ boost.T)[..., 3].mean()) > 1.0 > 10 * abs(x[..., 3].mean())


def test_data_algebra_is_rotations_in_so13() -> None:
    a = syn.data_algebra("so3_in_so13")
    assert a.shape == (3, 4, 4)
    np.testing.assert_array_equal(a[:, 0, :], 0.0)
    np.testing.assert_array_equal(a[:, 1:, 1:], np.stack([so_basis(3)[2], -so_basis(3)[1], so_basis(3)[0]]))


def test_scaling_function_invariant_under_dilations_not_rotations() -> None:
    ds = syn.scaling_invariant(SMALL, 0)
    x, y = ds.x, ds.y[:, 0]
    theta = np.arctan2(x[:, 1], x[:, 0])
    np.testing.assert_allclose(y, np.cos(2 * theta), atol=1e-12)
    for s in (1e-3, 0.5, 7.0, 1e3):
        np.testing.assert_allclose(syn.angle_function(s * x), y, rtol=0, atol=1e-12)
    np.testing.assert_allclose(syn.angle_function(x @ expm(0.3 * ds.true_algebra[0]).T), y, atol=1e-12)
    rot = expm(0.4 * so_basis(2)[0])
    assert np.abs(syn.angle_function(x @ rot.T) - y).max() > 0.5
    r = np.linalg.norm(x, axis=1)
    assert r.min() >= 0.1 and r.max() <= 10.0
    # log-uniform radius: log r has the flat mean and spread of U(log 0.1, log 10)
    assert abs(np.log(r).mean()) < 0.3 and np.log(r).std() == pytest.approx(2 * np.log(10) / np.sqrt(12), rel=0.1)
