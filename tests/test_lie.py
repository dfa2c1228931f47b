"""Lie algebra basics, checked against mathematics (property tests over several algebras)."""
import numpy as np
import pytest

from liegan_core import lie

ALGEBRAS = {
    "so2": lie.so2_generator()[None],
    "so3": lie.so_basis(3),
    "so13": lie.so13_basis(),
    "so2_on_4_vectors": lie.repeat_block(lie.so2_generator(), 4)[None],
}


def test_exp_so2_is_rotation():
    for t in (0.3, np.pi / 2, 2.0):
        r = lie.expm(t * lie.so2_generator())
        assert np.allclose(r, [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]], atol=1e-12)


@pytest.mark.parametrize("name", ["so2", "so3", "so2_on_4_vectors"])
def test_exp_of_antisymmetric_is_orthogonal(name):
    rng = np.random.default_rng(0)
    gens = ALGEBRAS[name]
    g = lie.expm(np.tensordot(rng.normal(size=len(gens)), gens, axes=1))
    assert np.allclose(g.T @ g, np.eye(g.shape[0]), atol=1e-12)
    assert np.isclose(np.linalg.det(g), 1.0)


def test_lorentz_generators_preserve_minkowski_metric():
    eta = lie.minkowski_metric()
    for l in lie.so13_basis():
        assert np.allclose(l.T @ eta + eta @ l, 0)
    rng = np.random.default_rng(1)
    g = lie.expm(np.tensordot(rng.normal(size=6), lie.so13_basis(), axes=1))
    assert np.allclose(g.T @ eta @ g, eta, atol=1e-10)


@pytest.mark.parametrize("name", list(ALGEBRAS))
def test_standard_algebras_close(name):
    assert lie.closure_error(ALGEBRAS[name]) < 1e-12


def test_closure_detects_non_algebra():
    # two generators of so(3) without their commutator do not close
    assert lie.closure_error(lie.so_basis(3)[:2]) > 0.9


def test_similarity_identical_and_scaled_and_signed():
    j = lie.so2_generator()[None]
    assert lie.algebra_similarity(j, j)["algebra_similarity"] == pytest.approx(1.0)
    assert lie.algebra_similarity(-3.7 * j, j)["algebra_similarity"] == pytest.approx(1.0)


def test_similarity_rotated_basis_is_one():
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    mixed = np.tensordot(q, lie.so_basis(3), axes=1)
    res = lie.algebra_similarity(mixed, lie.so_basis(3))
    assert res["algebra_similarity"] == pytest.approx(1.0)
    assert res["worst_angle_deg"] == pytest.approx(0.0, abs=1e-5)


def test_similarity_orthogonal_is_zero():
    sym = np.array([[[1.0, 0.0], [0.0, -1.0]]])
    assert lie.algebra_similarity(sym, lie.so2_generator()[None])["algebra_similarity"] == pytest.approx(0.0)


def test_similarity_partial_overlap():
    # learned: rotations about x3 and a symmetric matrix; truth: so(3). One of three dims matched.
    sym = np.diag([1.0, -1.0, 0.0])[None]
    learned = np.concatenate([lie.so_basis(3)[:1], sym])
    res = lie.algebra_similarity(learned, lie.so_basis(3))
    assert res["algebra_similarity"] == pytest.approx(1 / 3)
    assert res["worst_angle_deg"] == pytest.approx(90.0)
    # a generator at 45 degrees to the truth
    half = (lie.so2_generator() + np.diag([1.0, -1.0]))[None]  # equal parts, both norm sqrt(2)
    assert lie.algebra_similarity(half, lie.so2_generator()[None])["algebra_similarity"] == pytest.approx(np.cos(np.pi / 4))


def test_invariant_metric_of_lorentz_generators_is_minkowski():
    j = lie.invariant_metric(lie.so13_basis())
    eta = lie.minkowski_metric()
    assert lie.abs_cosine(j, eta) == pytest.approx(1.0)


def test_orthogonality_regulariser_is_the_published_channel_correlation():
    """The published channel term rescales each L_i to squared norm n, then sums |<L_i, L_j>| over i < j."""
    import torch

    from liegan_core.group import orthogonality_regulariser

    torch.manual_seed(0)
    gens, n = torch.randn(3, 4, 4), 4
    scaled = gens / gens.flatten(1).norm(dim=1)[:, None, None] * np.sqrt(n)
    published = sum(abs(float((scaled[i] * scaled[j]).sum())) for i in range(3) for j in range(i + 1, 3))
    assert float(orthogonality_regulariser(gens, n)) == pytest.approx(published, rel=1e-5)
    assert float(orthogonality_regulariser(gens[:1], n)) == 0.0


def test_init_scale_auto_follows_the_published_conventions_and_bad_values_are_named():
    from liegan_core.errors import UserError
    from liegan_core.group import LieGenerator, resolve_init_scale
    from liegan_core.methods.base import SearchSpace

    full, blocks = SearchSpace(n=4, channels=7), SearchSpace(n=8, channels=1, block=2)
    assert resolve_init_scale("auto", full, "liegan") == pytest.approx(np.sqrt(2) / 4)  # Kaiming normal
    assert resolve_init_scale("auto", blocks, "liegan") == 1.0                            # N(0, 1) blocks
    assert resolve_init_scale(0.5, full, "liegan") == 0.5
    for bad in ["big", 0, -1.0, True, None]:
        with pytest.raises(UserError, match=r"methods\.liegan\.init_scale: expected 'auto' or a positive number"):
            resolve_init_scale(bad, full, "liegan")
    assert LieGenerator(full).blocks.std().item() == pytest.approx(np.sqrt(2) / 4, rel=0.5)
