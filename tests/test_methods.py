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
from liegan_core.methods.symmetrygan import LinearElements, element_logarithms, orthogonality_error

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


def label_task(n: int = 256, seed: int = 0) -> Dataset:
    """Three classes by the tercile of |x|^2: an invariant class label."""
    x = np.random.default_rng(seed).normal(size=(n, 2))
    r2 = (x**2).sum(1)
    y = np.digitize(r2, np.quantile(r2, [1 / 3, 2 / 3])).astype(np.int64)
    return Dataset(x=x, y=y, splits={"train": np.arange(n)},
                   x_rep={"type": "vector", "n": 2}, y_rep={"type": "label", "classes": 3})


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
    "invariant_label": (lambda: label_task(), SearchSpace(n=2, channels=1)),
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


@pytest.mark.parametrize("case", ["invariant", "equivariant", "label"])
def test_liegg_recovers_so2(case: str) -> None:
    data = {"invariant": invariant_task, "equivariant": equivariant_task, "label": label_task}[case](512)
    disc = fit("liegg", data, SearchSpace(n=2), epochs=30)
    assert algebra_similarity(disc.generators, SO2)["algebra_similarity"] >= 0.95
    s = disc.info["singular_values"]
    assert s.shape == (4,) and np.all(np.diff(s) >= 0)
    assert disc.info["singular_value_0"] < 0.5 * disc.info["singular_value_1"]  # a clear gap to the rest


# --- SymmetryGAN ------------------------------------------------------------------------------


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


@pytest.mark.slow
def test_symmetrygan_learns_a_distribution_preserving_element() -> None:
    """On O(2)-symmetric data the element moves from a random start to near an orthogonal matrix.

    Measured over seeds 0-5 with these settings: start 0.84-17.9, end 0.03-0.30 (seed 0: 17.9 -> 0.13).
    Which element (a rotation by some angle, the identity, a reflection) is not reliable, and with
    the default discriminator betas (0.9, 0.999) the toy GAN oscillates (end 0.25-1.0), hence 0.5.
    """
    space = SearchSpace(n=2)
    torch.manual_seed(0)  # what seed_everything(0) does before the element is drawn
    start = orthogonality_error(LinearElements(space, 1.0)().detach().double().numpy()).max()
    hp = {"lr_generator": 1e-2, "lr_discriminator": 1e-3, "betas_discriminator": [0.5, 0.999],
          "discriminator_hidden": [128, 128]}
    end = fit("symmetrygan", invariant_task(2048), space, epochs=10, **hp).info["orthogonality_error"]
    assert start > 0.5 and end < 0.35


# --- LieGAN and Augerino+ ---------------------------------------------------------------------


@pytest.mark.slow
def test_liegan_recovers_so2() -> None:
    """Measured |cos| 0.990-1.000 over seeds 0-5 with these settings (seed 0: 0.990)."""
    hp = {"lr_generator": 1e-2, "lr_discriminator": 1e-3, "discriminator_hidden": [128, 128]}
    disc = fit("liegan", invariant_task(2048), SearchSpace(n=2), epochs=10, **hp)
    assert algebra_similarity(disc.generators, SO2)["algebra_similarity"] >= 0.9


def test_augerino_learns_its_task() -> None:
    """Augerino+ reliably lowers its task loss (measured x0.41-0.64 over 5 epochs, seeds 0-5); whether
    the augmentation ends on so(2) is not reliable at this budget (it often shrinks towards the
    identity instead), so that is not asserted."""
    disc = fit("augerino", invariant_task(2048), SearchSpace(n=2), epochs=5, predictor_hidden=[128, 128])
    assert disc.log[-1]["loss_task"] < 0.8 * disc.log[0]["loss_task"]
