"""Lie algebra helpers: standard bases, exponentials, actions and basis-invariant comparison.

One concept, one place: every module that needs a generator basis, a group element or a
similarity between algebras imports it from here.
"""
from __future__ import annotations

import itertools

import numpy as np
import torch

Array = np.ndarray


def so2_generator() -> Array:
    """The so(2) generator J = [[0, -1], [1, 0]]; exp(tJ) rotates counter-clockwise by t."""
    return np.array([[0.0, -1.0], [1.0, 0.0]])


def so_basis(n: int) -> Array:
    """Basis of so(n): E_ij - E_ji for i < j, shape [n(n-1)/2, n, n]."""
    mats = []
    for i, j in itertools.combinations(range(n), 2):
        m = np.zeros((n, n))
        m[j, i] = 1.0
        m[i, j] = -1.0
        mats.append(m)
    return np.stack(mats)


def minkowski_metric() -> Array:
    """diag(1, -1, -1, -1) on (E, px, py, pz)."""
    return np.diag([1.0, -1.0, -1.0, -1.0])


def so13_basis() -> Array:
    """Basis of so(1,3): 3 boosts K_i then 3 rotations J_i, shape [6, 4, 4].

    Every element satisfies L^T eta + eta L = 0 with eta the Minkowski metric.
    """
    mats = []
    for i in range(1, 4):
        k = np.zeros((4, 4))
        k[0, i] = k[i, 0] = 1.0
        mats.append(k)
    for a, b in ((2, 3), (3, 1), (1, 2)):
        r = np.zeros((4, 4))
        r[b, a] = 1.0
        r[a, b] = -1.0
        mats.append(r)
    return np.stack(mats)


def gl_basis(n: int) -> Array:
    """Elementary matrices E_ij, shape [n*n, n, n]: the full search space gl(n)."""
    return np.eye(n * n).reshape(n * n, n, n)


def affine_basis() -> Array:
    """Basis of the affine algebra of the plane in homogeneous 3x3 form, shape [6, 3, 3].

    Order: translation x, translation y, rotation, scaling, two shears.
    """
    e = np.zeros((6, 3, 3))
    e[0, 0, 2] = 1.0
    e[1, 1, 2] = 1.0
    e[2, :2, :2] = so2_generator()
    e[3, :2, :2] = np.eye(2)
    e[4, :2, :2] = [[1.0, 0.0], [0.0, -1.0]]
    e[5, :2, :2] = [[0.0, 1.0], [1.0, 0.0]]
    return e


def repeat_block(block: Array, copies: int) -> Array:
    """Embed a generator block [..., k, k] as kron(I_copies, block): the same block on each k-vector."""
    block = np.asarray(block)
    eye = np.eye(copies)
    return np.einsum("ab,...ij->...aibj", eye, block).reshape(
        *block.shape[:-2], copies * block.shape[-1], copies * block.shape[-1]
    )


def expm(generators: Array) -> Array:
    """Matrix exponential of [..., n, n] arrays (float64 via torch, exact to rounding)."""
    return torch.linalg.matrix_exp(torch.as_tensor(np.asarray(generators, dtype=np.float64))).numpy()


def orthonormal_span(generators: Array, tol: float = 1e-10) -> Array:
    """Orthonormal basis [k, n*n] of the span of generators [c, n, n] in the Frobenius inner product.

    Channels that are (numerically) zero or linearly dependent are dropped, so a method that
    learned the same direction twice is not credited with two dimensions.
    """
    g = np.asarray(generators, dtype=np.float64)
    flat = g.reshape(g.shape[0], -1)
    if flat.size == 0:
        return flat
    u, s, vt = np.linalg.svd(flat, full_matrices=False)
    rank = int(np.sum(s > tol * max(s.max(initial=0.0), 1e-300))) if s.size else 0
    if s.size and s.max() < 1e-12:
        rank = 0
    return vt[:rank]


def principal_cosines(learned: Array, true: Array) -> Array:
    """Cosines of the principal angles between span(learned) and span(true), descending.

    Length min(rank learned, rank true); 1 means a shared direction, 0 orthogonal.
    """
    a = orthonormal_span(learned)
    b = orthonormal_span(true)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros(0)
    s = np.linalg.svd(a @ b.T, compute_uv=False)
    return np.clip(s, 0.0, 1.0)


def algebra_similarity(learned: Array, true: Array) -> dict[str, float]:
    """Basis-, sign- and scale-invariant similarity of a learned algebra to the true one.

    learned: [c, n, n]; true: [k, n, n]. Principal angles between the spans in R^(n*n)
    (Frobenius inner product). `algebra_similarity` is the |cosine| of the single principal angle
    when the true algebra is one-dimensional (the paper's |cos| metric), else the mean cos^2 over
    the true algebra's k dimensions, where dimensions the learned span misses count as 0 (learning
    fewer generators than the truth is penalised). Also `mean_cos2` and `worst_angle_deg`.
    """
    learned = np.asarray(learned, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if learned.shape[-2:] != true.shape[-2:]:
        raise ValueError(
            f"learned generators act on {learned.shape[-1]}-vectors but the true algebra on "
            f"{true.shape[-1]}-vectors"
        )
    k = orthonormal_span(true).shape[0]
    if k == 0:
        raise ValueError("the true algebra is empty: nothing to compare with")
    cos = principal_cosines(learned, true)
    padded = np.zeros(k)
    padded[: min(k, cos.size)] = cos[:k]
    mean_cos2 = float(np.mean(padded**2))
    return {
        "algebra_similarity": float(padded[0]) if k == 1 else mean_cos2,
        "mean_cos2": mean_cos2,
        "worst_angle_deg": float(np.degrees(np.arccos(padded.min()))),
    }


def abs_cosine(a: Array, b: Array) -> float:
    """|cos| between two matrices in the Frobenius inner product."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(abs(a @ b) / denom) if denom > 0 else 0.0


def closure_error(generators: Array) -> float:
    """How far span(generators) is from closing under the commutator [A, B] = AB - BA.

    The relative norm of the part of each normalised commutator outside the span, maximised over
    pairs: 0 for a Lie algebra, up to 1 when a commutator leaves the span entirely.
    """
    basis = orthonormal_span(generators)
    if basis.shape[0] < 2:
        return 0.0
    n = int(round(np.sqrt(basis.shape[1])))
    mats = basis.reshape(-1, n, n)
    worst = 0.0
    for i, j in itertools.combinations(range(mats.shape[0]), 2):
        c = (mats[i] @ mats[j] - mats[j] @ mats[i]).ravel()
        norm = np.linalg.norm(c)
        if norm < 1e-12:
            continue
        resid = c - basis.T @ (basis @ c)
        worst = max(worst, float(np.linalg.norm(resid) / norm))
    return worst


def invariant_metric(generators: Array) -> Array:
    """Symmetric J with L^T J + J L = 0 for every generator L, Frobenius-normalised.

    Solved as the least-singular vector of the linear constraint on symmetric matrices; the sign
    is fixed so that J[0, 0] >= 0. Learned generators are only approximately in an orthogonal
    algebra, so the best least-squares solution is returned.
    """
    g = np.asarray(generators, dtype=np.float64)
    n = g.shape[-1]
    iu = np.triu_indices(n)
    sym_basis = []
    for i, j in zip(*iu):
        m = np.zeros((n, n))
        m[i, j] = m[j, i] = 1.0
        sym_basis.append(m)
    sym_basis = np.stack(sym_basis)
    cols = []
    for s in sym_basis:
        cols.append(np.concatenate([(l.T @ s + s @ l).ravel() for l in g]))
    a = np.stack(cols, axis=1)
    _, _, vt = np.linalg.svd(a)
    coeffs = vt[-1]
    j = np.tensordot(coeffs, sym_basis, axes=1)
    j /= np.linalg.norm(j)
    if j[0, 0] < 0:
        j = -j
    return j


def lorentz_channel_types(generators: Array) -> list[str]:
    """Classify each 4x4 generator as 'boost' or 'rotation' by where its norm lies.

    In so(1,3) with (E, px, py, pz) coordinates, boosts are symmetric matrices (mixing E with
    momentum) and rotations antisymmetric; a channel is a boost when most of its squared norm is
    in the symmetric part, 'mixed' when neither part holds 80% of it.
    """
    out = []
    for g in np.asarray(generators, dtype=np.float64):
        sym = 0.5 * (g + g.T)
        total = float((g**2).sum()) or 1.0
        frac = float((sym**2).sum()) / total
        out.append("boost" if frac >= 0.8 else "rotation" if frac <= 0.2 else "mixed")
    return out


def rotation_angle_deg(generator: Array) -> float:
    """Rotation angle (degrees, in [0, 180]) of exp(generator) for a generator of a rotation.

    The angle is the largest |imaginary part| of the eigenvalues of exp(L), read off through
    arccos of its real part so that angles beyond 180 degrees fold back.
    """
    eig = np.linalg.eigvals(expm(np.asarray(generator, dtype=np.float64)))
    k = int(np.argmax(np.abs(eig.imag)))
    return float(np.degrees(np.arccos(np.clip(eig[k].real / max(abs(eig[k]), 1e-300), -1.0, 1.0))))
