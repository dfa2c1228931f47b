"""Discovery methods: the protocol every registered method must keep, and what each one recovers.

Toy tasks: x ~ N(0, I) in the plane; an invariant scalar y = |x|^2, and an equivariant vector
y = R(|x|) x (each 2-block rotated by its own length), both symmetric under SO(2).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from liegan_core.data.dataset import Dataset
from liegan_core.lie import algebra_similarity, repeat_block, so2_generator
from liegan_core.methods import Budget, RunContext, SearchSpace, available, get_method
from liegan_core.methods.liegg import constraint_rows
from liegan_core.methods.symmetrygan import element_logarithms

FIXED_ANSWER = {"oracle", "none"}  # methods that return a given answer without training
TRAINED = [m for m in available() if m not in FIXED_ANSWER]
SO2 = so2_generator()[None]


def rotate_by_length(v: np.ndarray) -> np.ndarray:
    """Rotate every 2-vector in v [..., 2] by the angle |v|: an SO(2)-equivariant map (not scaling-equivariant)."""
    r = np.linalg.norm(v, axis=-1)
    c, s = np.cos(r), np.sin(r)
    return np.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], axis=-1)


def invariant_task(n: int = 256, seed: int = 0) -> Dataset:
    x = np.random.default_rng(seed).normal(size=(n, 2))
    return Dataset(x=x, y=(x**2).sum(1, keepdims=True), splits={"train": np.arange(n)},
                   x_rep={"type": "vector", "n": 2}, y_rep={"type": "scalar"})


def equivariant_task(n: int = 256, seed: int = 0, points: int = 1) -> Dataset:
    """x: `points` 2-vectors concatenated (n = 2 * points), y: each rotated by its own length."""
    x = np.random.default_rng(seed).normal(size=(n, points, 2))
    y = rotate_by_length(x)
    dim = 2 * points
    return Dataset(x=x.reshape(n, dim), y=y.reshape(n, dim), splits={"train": np.arange(n)},
                   x_rep={"type": "vector", "n": dim}, y_rep={"type": "vector", "n": dim})


def fit(name: str, data: Dataset, space: SearchSpace, epochs: int = 2, seed: int = 0, ctx: RunContext | None = None,
        **params):
    if name == "oracle":
        params["true_algebra"] = space.effective(so2_generator()[None])
    method = get_method(name)
    assert method.skip(data, space) is None
    return method.fit(data, space, Budget(epochs=epochs, batch_size=64), seed, params, ctx or RunContext())


CASES = {
    "invariant_scalar": (lambda: invariant_task(), SearchSpace(n=2, channels=1)),
    "equivariant_vector_blocks": (lambda: equivariant_task(points=2), SearchSpace(n=4, channels=2, block=2)),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", available())
def test_protocol_shapes_log_determinism(name: str, case: str) -> None:
    make, space = CASES[case]
    data = make()
    first = fit(name, data, space)
    assert first.generators.ndim == 3 and first.generators.shape[1:] == (space.n, space.n)
    assert np.isfinite(first.generators).all()
    for key, value in first.info.items():
        assert np.isfinite(np.asarray(value, dtype=np.float64)).all(), key
    if name in FIXED_ANSWER:  # oracle returns the truth's basis, none an empty one, whatever the channels
        return
    assert first.generators.shape[0] == space.channels
    assert [row["epoch"] for row in first.log] == [1, 2]
    assert all(np.isfinite(v) for row in first.log for v in row.values())
    again = fit(name, data, space)
    np.testing.assert_array_equal(first.generators, again.generators)


@pytest.mark.parametrize("name", available())
def test_mask_is_respected(name: str) -> None:
    mask = np.array([[0.0, 1.0], [1.0, 0.0]])
    space = SearchSpace(n=4, channels=1, block=2, mask=mask)
    disc = fit(name, equivariant_task(points=2), space)
    zero = repeat_block(1.0 - mask, 2).astype(bool)
    assert (disc.generators[:, zero] == 0).all()


@pytest.mark.parametrize("name", TRAINED)
def test_resume_from_checkpoint_matches_uninterrupted_run(name: str, tmp_path) -> None:
    data, space = invariant_task(), SearchSpace(n=2, channels=1)
    straight = fit(name, data, space, epochs=3)
    ctx = RunContext(workdir=str(tmp_path), checkpoint_every=1)
    fit(name, data, space, epochs=2, ctx=ctx)
    assert (tmp_path / "checkpoint.pt").exists()
    resumed = fit(name, data, space, epochs=3, ctx=RunContext(workdir=str(tmp_path), checkpoint_every=1))
    np.testing.assert_array_equal(straight.generators, resumed.generators)
    assert [row["epoch"] for row in resumed.log] == [1, 2, 3]


# --- LieGG ------------------------------------------------------------------------------------


def test_liegg_constraints_vanish_exactly_on_the_symmetry() -> None:
    """For exactly symmetric functions the constraint rows annihilate vec(J) and not vec(I)."""
    x = torch.randn(64, 4, dtype=torch.float64)
    j, eye = so2_generator().ravel(), np.eye(2).ravel()
    invariant = constraint_rows(lambda v: (v**2).sum(-1, keepdim=True), x, x, {"type": "scalar"}, 2).numpy()

    def equivariant(v: torch.Tensor) -> torch.Tensor:
        p = v.reshape(-1, 2)
        r = p.norm(dim=-1)
        out = torch.stack([r.cos() * p[:, 0] - r.sin() * p[:, 1], r.sin() * p[:, 0] + r.cos() * p[:, 1]], -1)
        return out.reshape(v.shape)

    vector = constraint_rows(equivariant, x, x, {"type": "vector"}, 2).numpy()
    for rows in (invariant, vector):
        flat = rows.reshape(-1, 4)
        assert np.abs(flat @ j).max() < 1e-10
        assert np.abs(flat @ eye).max() > 1e-2


@pytest.mark.parametrize("case", ["invariant", "equivariant"])
def test_liegg_recovers_so2(case: str) -> None:
    data = invariant_task(512) if case == "invariant" else equivariant_task(512)
    disc = fit("liegg", data, SearchSpace(n=2), epochs=10)
    assert algebra_similarity(disc.generators, SO2)["algebra_similarity"] >= 0.95
    s = disc.info["singular_values"]
    assert s.shape == (4,) and np.all(np.diff(s) >= 0)
    assert disc.info["singular_value_0"] < 0.5 * disc.info["singular_value_1"]  # a clear gap to the rest


# --- SymmetryGAN -------------------------------------------------------------------------------


def rotation(angle: float) -> np.ndarray:
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def test_symmetrygan_logarithm_and_flags() -> None:
    logs, flags = element_logarithms(rotation(np.pi / 2)[None])
    np.testing.assert_allclose(logs[0], np.pi / 2 * so2_generator(), atol=1e-12)
    assert flags == {"logm_complex": 0.0, "logm_failed": 0.0, "negative_real_eigenvalues": 0.0}
    _, flags = element_logarithms(np.diag([1.0, -1.0])[None])  # a reflection: no real logarithm
    assert flags["logm_complex"] == 1.0 and flags["negative_real_eigenvalues"] == 1.0
    logs, flags = element_logarithms(np.diag([1.0, 0.0])[None])  # singular: no logarithm at all
    assert flags["logm_failed"] == 1.0 and (logs == 0).all()


def test_symmetrygan_learns_a_distribution_preserving_element() -> None:
    """On O(2)-symmetric data the learned element ends near an orthogonal matrix (from a random start)."""
    space = SearchSpace(n=2)
    hp = {"lr_generator": 1e-2, "lr_discriminator": 1e-3, "discriminator_hidden": [128, 128]}
    before = fit("symmetrygan", invariant_task(2048), space, epochs=1, lr_generator=1e-12)
    after = fit("symmetrygan", invariant_task(2048), space, epochs=10, **hp)
    assert before.info["orthogonality_error"] > 0.3
    assert after.info["orthogonality_error"] < 0.2


# --- LieGAN and Augerino+ ----------------------------------------------------------------------


def test_liegan_recovers_so2() -> None:
    hp = {"lr_generator": 1e-2, "lr_discriminator": 1e-3, "discriminator_hidden": [128, 128]}
    disc = fit("liegan", invariant_task(2048), SearchSpace(n=2), epochs=10, **hp)
    assert algebra_similarity(disc.generators, SO2)["algebra_similarity"] >= 0.9
