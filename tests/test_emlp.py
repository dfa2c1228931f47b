"""Equivariant MLP: exact equivariance, known basis sizes, the role of the tolerance, dtype/device."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from liegan_core.lie import expm, minkowski_metric, repeat_block, so13_basis, so2_generator, so_basis
from liegan_core.models.emlp import (
    EMLP,
    T0,
    T1,
    T2,
    EMLPBlock,
    EquivariantLinear,
    GatedNonlinearity,
    Rep,
    equivariant_basis,
    split_repeated_block,
    with_gates,
)

_P = np.linalg.qr(np.random.default_rng(7).standard_normal((8, 8)))[0]
GROUPS = [
    pytest.param(so2_generator()[None], id="so2-R2"),
    pytest.param(repeat_block(so2_generator(), 4)[None], id="so2-2body-kron(I4,J)"),
    pytest.param(_P @ repeat_block(so2_generator(), 4)[None] @ _P.T, id="so2-8dim-dense(no-block)"),
    pytest.param(so_basis(3), id="so3-R3"),
    pytest.param(so13_basis(), id="so13-R4"),
]


@pytest.fixture
def float64():
    """Build and evaluate everything in float64 so the bases are not rounded to float32."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(old)


def group_element(rep: Rep, w: np.ndarray) -> torch.Tensor:
    """rho(g) for g = exp(sum_i w_i L_i), as exp of the induced generators."""
    return torch.tensor(expm(np.tensordot(w, rep.generators(len(w)), axes=1)))


def rel_error(f, rho_in: torch.Tensor, rho_out: torch.Tensor, dim_in: int) -> float:
    """max over a batch of ||f(rho_in x) - rho_out f(x)|| / ||f(x)||."""
    x = torch.randn(16, dim_in)
    with torch.no_grad():
        fx = f(x)
        err = (f(x @ rho_in.T) - fx @ rho_out.T).norm(dim=-1) / fx.norm(dim=-1)
    assert fx.norm() > 0
    return float(err.max())


@pytest.mark.parametrize("out_scalar", [False, True], ids=["vector-out", "scalar-out"])
@pytest.mark.parametrize("gens", GROUPS)
def test_emlp_is_equivariant(gens: np.ndarray, out_scalar: bool, float64) -> None:
    n, c = gens.shape[-1], gens.shape[0]
    model = EMLP.from_generators(gens, in_copies=2, out_copies=1, out_scalar=out_scalar, hidden_channels=48, num_layers=2)
    rng = np.random.default_rng(1)
    for _ in range(3):
        g = expm(np.tensordot(0.5 * rng.standard_normal(c), gens, axes=1))
        rho_in = torch.tensor(repeat_block(g, 2))
        rho_out = torch.eye(1) if out_scalar else torch.tensor(g)
        assert rel_error(model, rho_in, rho_out, 2 * n) < 1e-5


@pytest.mark.parametrize("gens", GROUPS)
def test_single_layers_are_equivariant(gens: np.ndarray, float64) -> None:
    v = T1(gens)
    t2 = T2(gens) if gens.shape[-1] <= 4 else v  # the 8-dim T2 -> T2 solve alone would take minutes
    rep_in, rep_out = T0 + v + t2, 2 * v + T0 + t2
    layer = EquivariantLinear(rep_in, rep_out)
    gate = GatedNonlinearity(rep_out)
    block = EMLPBlock(rep_in, rep_out)
    assert block.quadratic.num_features > 0
    rng = np.random.default_rng(2)
    for _ in range(3):
        w = 0.5 * rng.standard_normal(gens.shape[0])
        g_in, g_out, g_gated = (group_element(r, w) for r in (rep_in, rep_out, with_gates(rep_out)))
        assert rel_error(layer, g_in, g_out, rep_in.dim) < 1e-5
        assert rel_error(gate, g_gated, g_out, with_gates(rep_out).dim) < 1e-5
        assert rel_error(block, g_in, g_out, rep_in.dim) < 1e-5
    w_mat = layer.weight_matrix().detach().numpy()
    for a, b in zip(rep_out.generators(), rep_in.generators()):
        assert np.abs(a @ w_mat - w_mat @ b).max() < 1e-10
    # The T0 summand plus the invariant vectors of T2 (so(2): delta and epsilon; so(3), so(1,3): the metric).
    assert layer.bias_basis_size == 1 + equivariant_basis(T0, t2).shape[0]


@pytest.mark.parametrize(
    ("gens", "rep_in", "rep_out", "expected"),
    [
        pytest.param(so2_generator()[None], "T1", "T1", 2, id="so2:T1->T1"),
        pytest.param(repeat_block(so2_generator(), 4)[None], "T1", "T1", 32, id="so2-2body:T1->T1"),
        pytest.param(so_basis(3), "T1", "T1", 1, id="so3:T1->T1"),
        pytest.param(so_basis(3), "T1", "T0", 0, id="so3:T1->T0"),
        pytest.param(so_basis(3), "T2", "T0", 1, id="so3:T2->T0(trace)"),
        pytest.param(so_basis(3), "T2", "T2", 3, id="so3:T2->T2"),
        pytest.param(so13_basis(), "T1", "T1", 1, id="so13:T1->T1"),
        pytest.param(so13_basis(), "T2", "T0", 1, id="so13:T2->T0(metric)"),
    ],
)
def test_basis_sizes(gens: np.ndarray, rep_in: str, rep_out: str, expected: int) -> None:
    reps = {"T0": T0, "T1": T1(gens), "T2": T2(gens)}
    assert equivariant_basis(reps[rep_in], reps[rep_out]).shape[0] == expected
    assert EquivariantLinear(reps[rep_in], reps[rep_out]).basis_size == expected


@pytest.mark.parametrize(
    ("gens", "form"),
    [pytest.param(so_basis(3), np.eye(3), id="so3-identity"), pytest.param(so13_basis(), minkowski_metric(), id="so13-eta")],
)
def test_invariant_bilinear_form_is_the_metric(gens: np.ndarray, form: np.ndarray) -> None:
    q = equivariant_basis(T2(gens), T0)[0, 0]
    assert abs(q @ form.ravel()) / (np.linalg.norm(q) * np.linalg.norm(form)) == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("gens", GROUPS)
def test_block_pair_solve_matches_full_solve(gens: np.ndarray) -> None:
    """Solving per summand pair and assembling gives the same space as one kron SVD over the whole rep."""
    layer = EquivariantLinear(3 * T1(gens), 2 * T1(gens))
    full = equivariant_basis(T1(repeat_block(gens, 3)), T1(repeat_block(gens, 2)))
    assert layer.basis_size == full.shape[0] == 6 * equivariant_basis(T1(gens), T1(gens)).shape[0]
    w = layer.weight_matrix().detach().double().numpy().ravel()
    flat = full.reshape(full.shape[0], -1)
    assert np.linalg.norm(w - flat.T @ (flat @ w)) < 1e-5 * np.linalg.norm(w)


@pytest.mark.parametrize(
    ("gens", "rep", "exact"),
    [
        pytest.param(repeat_block(so2_generator(), 4)[None], "T1->T1", 32, id="2body-8dim:T1->T1"),
        pytest.param(so2_generator()[None], "T2->T0", 2, id="so2-R2:T2->T0"),
    ],
)
def test_tolerance_matters_for_perturbed_generators(gens: np.ndarray, rep: str, exact: int, caplog) -> None:
    noisy = gens + 1e-3 * np.random.default_rng(0).standard_normal(gens.shape)
    rep_in, rep_out = (T1(noisy), T1(noisy)) if rep == "T1->T1" else (T2(noisy), T0)
    with caplog.at_level(logging.INFO, logger="liegan_core.models.emlp"):
        tight = EquivariantLinear(rep_in, rep_out, tol=1e-6)
        loose = EquivariantLinear(rep_in, rep_out, tol=1e-2)
    assert tight.basis_size < loose.basis_size == exact
    assert "tol=1e-06" in caplog.text and "tol=0.01" in caplog.text


def test_parameters_and_buffers_follow_the_module() -> None:
    layer = EquivariantLinear(2 * T1(so_basis(3)) + T0, T2(so_basis(3)) + T0)
    names = dict(layer.named_buffers())
    assert any(k.startswith("basis") for k in names) and "bias_basis" in names
    layer = layer.to(torch.float64)
    assert all(p.dtype == torch.float64 for p in layer.parameters())
    assert all(b.dtype in (torch.float64, torch.long) for b in layer.buffers())
    assert layer(torch.randn(4, 7, dtype=torch.float64)).shape == (4, 10)
    if torch.cuda.is_available():
        layer = layer.to("cuda")
        assert all(b.is_cuda for b in layer.buffers())
        assert layer(torch.randn(4, 7, dtype=torch.float64, device="cuda")).shape == (4, 10)


def test_two_body_window_shapes_and_nonlinearity() -> None:
    gens = repeat_block(so2_generator(), 4)[None]
    block, k = split_repeated_block(gens)
    assert k == 4 and np.array_equal(block, so2_generator()[None])
    model = EMLP.from_generators(gens, in_copies=5, out_copies=1, hidden_channels=32, num_layers=2)
    assert model.rep_in.dim == 40 and model.rep_out.dim == 8
    x = torch.randn(3, 40)
    y = model(x)
    assert y.shape == (3, 8)
    assert not torch.allclose(model(2 * x) - model(torch.zeros(1, 40)), 2 * (y - model(torch.zeros(1, 40))), atol=1e-4)


def test_warns_when_no_invariant_can_feed_the_gates(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="liegan_core.models.emlp"):
        EMLP.from_generators(so_basis(3), in_copies=2, out_copies=1, hidden_channels=24, num_layers=1)
        assert "affine" not in caplog.text
        EMLP.from_generators(np.eye(2)[None], in_copies=2, out_copies=1, hidden_channels=24, num_layers=1)  # scaling
    assert "affine" in caplog.text


def test_rep_algebra() -> None:
    v = T1(so13_basis())
    assert (3 * v + T0).dim == 13 and T2(so13_basis()).dim == 16
    expected = np.kron(so13_basis()[0], np.eye(4)) + np.kron(np.eye(4), so13_basis()[0])
    assert np.array_equal(T2(so13_basis()).generators()[0], expected)
    assert with_gates(2 * v + T0 + v * v).dim == 8 + 1 + 16 + 3
    with pytest.raises(ValueError):
        v + T1(so_basis(3))
    assert equivariant_basis(v, v) is equivariant_basis(v, v)
