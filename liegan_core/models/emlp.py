"""Equivariant MLP built from any set of Lie algebra generators (the EMLP idea, Finzi et al. 2021).

Written from the maths: a representation is described by the matrices its Lie algebra generators
induce on it; a linear map W: V_in -> V_out is equivariant (for the connected group they generate)
iff rho_out(L) W - W rho_in(L) = 0 for every generator L. That is a linear constraint on vec(W),
so the equivariant maps are the null space of a constraint matrix, found by SVD. Learned generators
only approximately form a closed algebra, so the null space is cut at a relative tolerance `tol`
(the LieGAN paper loosened EMLP's tolerance for the same reason).

Direct sums decouple the constraint into one independent block per (output summand, input summand)
pair, so the layer solves once per distinct pair of summand types (cached) and assembles; copies of
the same summand cost nothing extra.

Linear maps and gates alone cannot make a vector input nonlinear: with no invariant linear
functional of the input every gate is a constant, and the network stays affine however deep. So
each hidden block also feeds the invariant quadratic forms x_a^T B x_b of its non-scalar summands
into its scalar and gate channels (a scalar-output version of EMLP's bilinear layer); vectors are
then scaled by functions of these invariants, the form of the universal equivariant maps.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Iterable

import numpy as np
import torch
from torch import nn

from ..lie import repeat_block

Array = np.ndarray
log = logging.getLogger(__name__)


def _common_num_generators(reps: Iterable[Rep]) -> int | None:
    """The number of generators c shared by `reps` (None if all are scalars, which fit any c)."""
    counts = {r.num_generators for r in reps} - {None}
    if len(counts) > 1:
        raise ValueError(f"representations of different algebras combined: generator counts {sorted(counts)}")
    return counts.pop() if counts else None


class Rep:
    """A representation of a Lie algebra, given by the matrices its generators induce on it.

    Build with `T0`, `T1(generators)`, `T2(generators)`, `a + b` (direct sum), `k * a` (k copies)
    and `a * b` (tensor product). Vectors are flattened in the order of the direct sum.
    """

    dim: int

    @property
    def num_generators(self) -> int | None:
        """Number of algebra generators c; None when the rep is made of scalars only (any c fits)."""
        raise NotImplementedError

    def generators(self, c: int | None = None) -> Array:
        """Induced generators, float64 [c, dim, dim]; `c` is only needed for pure-scalar reps."""
        raise NotImplementedError

    def summands(self) -> list[Rep]:
        """The direct summands in flattening order (a non-sum rep is its own single summand)."""
        return [self]

    @property
    def is_scalar(self) -> bool:
        return False

    def key(self, c: int | None = None) -> tuple[int, bytes]:
        """Hashable identity of the rep's action: equal keys -> same constraint, same cached basis."""
        return self.dim, self.generators(c).tobytes()

    def __add__(self, other: Rep) -> Rep:
        return DirectSum([self, other])

    def __rmul__(self, k: int) -> Rep:
        if not isinstance(k, int) or k < 0:
            return NotImplemented
        return DirectSum([self] * k)

    def __mul__(self, other: Rep | int) -> Rep:
        if isinstance(other, int):
            return self.__rmul__(other)
        return TensorProduct(self, other)


class Scalar(Rep):
    """The trivial representation: one dimension, every generator acts as 0."""

    dim = 1

    @property
    def num_generators(self) -> int | None:
        return None

    def generators(self, c: int | None = None) -> Array:
        return np.zeros((c or 0, 1, 1))

    @property
    def is_scalar(self) -> bool:
        return True

    def __repr__(self) -> str:
        return "T0"


class Vector(Rep):
    """The defining representation: the generators [c, n, n] themselves act on R^n."""

    def __init__(self, generators: Array) -> None:
        g = np.asarray(generators, dtype=np.float64)
        if g.ndim == 2:
            g = g[None]
        if g.ndim != 3 or g.shape[1] != g.shape[2]:
            raise ValueError(f"generators must have shape [c, n, n], got {g.shape}")
        self._generators = g
        self.dim = g.shape[-1]

    @property
    def num_generators(self) -> int | None:
        return self._generators.shape[0]

    def generators(self, c: int | None = None) -> Array:
        if c is not None and c != self._generators.shape[0]:
            raise ValueError(f"rep has {self._generators.shape[0]} generators, asked for {c}")
        return self._generators

    def __repr__(self) -> str:
        return f"T1[{self.dim}]"


class DirectSum(Rep):
    """rep_1 + ... + rep_k: block-diagonal action; nested sums are flattened."""

    def __init__(self, parts: Iterable[Rep]) -> None:
        self.parts: list[Rep] = [s for p in parts for s in p.summands()]
        self._c = _common_num_generators(self.parts)
        self.dim = sum(p.dim for p in self.parts)

    @property
    def num_generators(self) -> int | None:
        return self._c

    def generators(self, c: int | None = None) -> Array:
        c = self._c if c is None else c
        out = np.zeros((c or 0, self.dim, self.dim))
        start = 0
        for p in self.parts:
            out[:, start : start + p.dim, start : start + p.dim] = p.generators(c)
            start += p.dim
        return out

    def summands(self) -> list[Rep]:
        return list(self.parts)

    def __repr__(self) -> str:
        if not self.parts:
            return "0"
        counts: list[tuple[Rep, int]] = []
        for p in self.parts:
            if counts and counts[-1][0] is p:
                counts[-1] = (p, counts[-1][1] + 1)
            else:
                counts.append((p, 1))
        return " + ".join(f"{k}*{p!r}" if k > 1 else repr(p) for p, k in counts)


class TensorProduct(Rep):
    """a ⊗ b with induced generators L_a ⊗ I + I ⊗ L_b; kept as one summand (not distributed)."""

    def __init__(self, a: Rep, b: Rep) -> None:
        self.a, self.b = a, b
        self._c = _common_num_generators([a, b])
        self.dim = a.dim * b.dim

    @property
    def num_generators(self) -> int | None:
        return self._c

    def generators(self, c: int | None = None) -> Array:
        c = self._c if c is None else c
        ga, gb = self.a.generators(c), self.b.generators(c)
        ia, ib = np.eye(self.a.dim), np.eye(self.b.dim)
        return np.einsum("lij,ab->liajb", ga, ib).reshape(-1, self.dim, self.dim) + np.einsum(
            "ij,lab->liajb", ia, gb
        ).reshape(-1, self.dim, self.dim)

    @property
    def is_scalar(self) -> bool:
        return self.a.is_scalar and self.b.is_scalar

    def __repr__(self) -> str:
        return f"({self.a!r}⊗{self.b!r})"


T0: Rep = Scalar()


def T1(generators: Array) -> Rep:
    """The vector representation of the algebra spanned by generators [c, n, n]."""
    return Vector(generators)


def T2(generators: Array) -> Rep:
    """Rank-2 tensors T1 ⊗ T1 (n*n dims, row-major flattening of an n x n matrix)."""
    v = Vector(generators)
    return v * v


_BASIS_CACHE: dict[tuple, Array] = {}


def equivariant_basis(rep_in: Rep, rep_out: Rep, tol: float = 1e-6) -> Array:
    """Orthonormal basis [k, out.dim, in.dim] of the maps W with rho_out(L) W = W rho_in(L) for all L.

    Solves the whole constraint as one kron system (the layer calls it per summand pair). With
    row-major vec, vec(A W) = (A ⊗ I) vec W and vec(W B) = (I ⊗ B^T) vec W; the constraint rows are
    stacked over the generators and the null space is the right singular vectors whose singular
    value is <= tol * the largest one (relative, so it does not depend on the generators' scale).
    Cached per (rep_in, rep_out, tol); the returned array is read-only.
    """
    c = _common_num_generators([rep_in, rep_out])
    key = (rep_in.key(c), rep_out.key(c), float(tol))
    if key in _BASIS_CACHE:
        return _BASIS_CACHE[key]
    a, b = rep_out.generators(c), rep_in.generators(c)
    d_out, d_in = rep_out.dim, rep_in.dim
    n = d_out * d_in
    if not c or n == 0:
        null = np.eye(n)
    else:
        i_in, i_out = np.eye(d_in), np.eye(d_out)
        constraint = np.concatenate([np.kron(x, i_in) - np.kron(i_out, y.T) for x, y in zip(a, b)])
        if c > 1:  # same singular values and right vectors, but the SVD then skips the tall U
            constraint = np.linalg.qr(constraint, mode="r")
        _, s, vt = np.linalg.svd(constraint)
        null = vt[s <= tol * s[0]]
    basis = null.reshape(-1, d_out, d_in)
    basis.setflags(write=False)
    _BASIS_CACHE[key] = basis
    return basis


def with_gates(rep: Rep) -> Rep:
    """`rep` plus one gate scalar (T0) per non-scalar summand, appended at the end."""
    return rep + sum(not s.is_scalar for s in rep.summands()) * T0


def _group_summands(rep: Rep, c: int | None) -> dict[tuple, tuple[Rep, list[int]]]:
    """Summands of `rep` grouped by action: key -> (representative, start offsets of its copies)."""
    groups: dict[tuple, tuple[Rep, list[int]]] = {}
    start = 0
    for s in rep.summands():
        groups.setdefault(s.key(c), (s, []))[1].append(start)
        start += s.dim
    return groups


class EquivariantLinear(nn.Module):
    """Linear map rep_in -> rep_out, W = sum_k theta_k Q_k over the equivariant basis, same for the bias.

    Shapes: input [..., rep_in.dim] -> output [..., rep_out.dim]. The solve is done per pair of
    distinct summand types (cached), so k * T1 -> m * T1 costs one small SVD; each pair becomes a
    block of W written at the copies' positions. Bases and index maps are buffers, so they follow
    `.to(device/dtype)`. `basis_size` / `bias_basis_size` count the learnable coefficients and
    `tol` is the relative SVD cut-off used.
    """

    def __init__(self, rep_in: Rep, rep_out: Rep, tol: float = 1e-6) -> None:
        super().__init__()
        self.rep_in, self.rep_out, self.tol = rep_in, rep_out, tol
        c = _common_num_generators([rep_in, rep_out])
        t0 = time.perf_counter()
        ins, outs = _group_summands(rep_in, c), _group_summands(rep_out, c)
        dtype = torch.get_default_dtype()
        self.weights = nn.ParameterList()
        # Some non-scalar input summand reaches a scalar output: needed for non-constant gates.
        self.makes_invariants = False
        self._blocks: list[tuple[str, str, str]] = []
        for o_rep, o_starts in outs.values():
            for i_rep, i_starts in ins.values():
                q = equivariant_basis(i_rep, o_rep, tol)
                if q.shape[0] == 0:
                    continue
                self.makes_invariants |= o_rep.is_scalar and not i_rep.is_scalar
                name = f"_{len(self._blocks)}"
                self.register_buffer("basis" + name, torch.tensor(q, dtype=dtype))
                self.register_buffer("rows" + name, _positions(o_starts, o_rep.dim))
                self.register_buffer("cols" + name, _positions(i_starts, i_rep.dim))
                # Var(W_ij) ~ 1/in_dim: the basis is orthonormal, so k coefficients spread over d_out*d_in entries.
                std = math.sqrt(o_rep.dim * i_rep.dim / (q.shape[0] * max(rep_in.dim, 1)))
                self.weights.append(nn.Parameter(std * torch.randn(len(o_starts), len(i_starts), q.shape[0])))
                self._blocks.append(("basis" + name, "rows" + name, "cols" + name))
        columns, start = [np.zeros((rep_out.dim, 0))], 0
        for s in rep_out.summands():  # the bias is an equivariant map T0 -> rep_out, solved per summand
            columns.append(_embed(equivariant_basis(T0, s, tol), start, rep_out.dim))
            start += s.dim
        b = np.concatenate(columns, axis=1)
        self.register_buffer("bias_basis", torch.tensor(b, dtype=dtype))
        self.bias_coef = nn.Parameter(torch.randn(b.shape[1]) / math.sqrt(max(rep_in.dim, 1)))
        self.basis_size = sum(int(w.numel()) for w in self.weights)
        self.bias_basis_size = b.shape[1]
        log.info(
            "EquivariantLinear %r -> %r: tol=%g, weight basis %d (of %d entries), bias basis %d, %.3fs",
            rep_in, rep_out, tol, self.basis_size, rep_in.dim * rep_out.dim, self.bias_basis_size,
            time.perf_counter() - t0,
        )

    def weight_matrix(self) -> torch.Tensor:
        """The equivariant weight W, [rep_out.dim, rep_in.dim]."""
        w = self.bias_basis.new_zeros(self.rep_out.dim, self.rep_in.dim)
        for theta, (q, r, cl) in zip(self.weights, self._blocks):
            basis, rows, cols = getattr(self, q), getattr(self, r), getattr(self, cl)
            block = torch.einsum("abk,kij->aibj", theta, basis).reshape(rows.numel(), cols.numel())
            w = w.index_put((rows.reshape(-1, 1), cols.reshape(1, -1)), block)
        return w

    def bias_vector(self) -> torch.Tensor:
        """The equivariant bias b, [rep_out.dim] (non-zero only on invariant directions)."""
        return self.bias_basis @ self.bias_coef

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., rep_in.dim] -> [..., rep_out.dim]."""
        return x @ self.weight_matrix().T + self.bias_vector()


def _positions(starts: list[int], dim: int) -> torch.Tensor:
    """Flat indices [len(starts) * dim] of the copies starting at `starts`, copy-major."""
    return (torch.tensor(starts, dtype=torch.long)[:, None] + torch.arange(dim)).reshape(-1)


def _embed(basis: Array, start: int, total: int) -> Array:
    """Bias basis [k, d, 1] of one summand as columns [total, k] placed at its offset."""
    out = np.zeros((total, basis.shape[0]))
    out[start : start + basis.shape[1]] = basis[:, :, 0].T
    return out


class QuadraticInvariants(nn.Module):
    """Invariants x_a^T B_k x_b of every ordered pair of non-scalar summands, mixed into rep_out's scalars.

    B_k spans the equivariant maps a ⊗ b -> T0 (solved like the weights, per summand-type pair).
    Shapes: [..., rep_in.dim] -> [..., rep_out.dim], zero outside rep_out's scalar summands.
    `num_features` counts the invariants (0: this module adds nothing).
    """

    def __init__(self, rep_in: Rep, rep_out: Rep, tol: float = 1e-6) -> None:
        super().__init__()
        self.out_dim = rep_out.dim
        c = _common_num_generators([rep_in, rep_out])
        groups = [g for g in _group_summands(rep_in, c).values() if not g[0].is_scalar]
        dtype = torch.get_default_dtype()
        self._pairs: list[tuple[str, tuple[int, int], tuple[int, int]]] = []
        self.num_features = 0
        for ra, sa in groups:
            for rb, sb in groups:
                forms = equivariant_basis(TensorProduct(ra, rb), T0, tol)
                if forms.shape[0] == 0:
                    continue
                name = f"_{len(self._pairs)}"
                self.register_buffer("forms" + name, torch.tensor(forms.reshape(-1, ra.dim, rb.dim), dtype=dtype))
                self.register_buffer("a" + name, _positions(sa, ra.dim))
                self.register_buffer("b" + name, _positions(sb, rb.dim))
                self._pairs.append((name, (len(sa), ra.dim), (len(sb), rb.dim)))
                self.num_features += len(sa) * len(sb) * forms.shape[0]
        start, scalars = 0, []
        for s in rep_out.summands():
            if s.is_scalar:
                scalars.append(start)
            start += s.dim
        self.register_buffer("scalar_pos", torch.tensor(scalars, dtype=torch.long))
        self.mix = nn.Linear(self.num_features, len(scalars), bias=False) if self.num_features and scalars else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.new_zeros(*x.shape[:-1], self.out_dim)
        if self.mix is None:
            return out
        feats = []
        for name, shape_a, shape_b in self._pairs:
            xa = x[..., getattr(self, "a" + name)].unflatten(-1, shape_a)
            xb = x[..., getattr(self, "b" + name)].unflatten(-1, shape_b)
            feats.append(torch.einsum("...ai,kij,...bj->...abk", xa, getattr(self, "forms" + name), xb).flatten(-3))
        out[..., self.scalar_pos] = self.mix(torch.cat(feats, dim=-1))
        return out


class GatedNonlinearity(nn.Module):
    """with_gates(rep) -> rep: swish on scalar summands, sigmoid(own gate) * v on each other summand.

    Uniformly out_p = x_p * sigmoid(x_{src(p)}): src(p) = p for a scalar (that is SiLU) and the
    summand's gate scalar otherwise. Gates are invariant, so scaling a summand by a function of
    them commutes with the group action. Shapes: [..., with_gates(rep).dim] -> [..., rep.dim].
    """

    def __init__(self, rep: Rep) -> None:
        super().__init__()
        self.rep = rep
        src, gate, start = [], rep.dim, 0
        for s in rep.summands():
            if s.is_scalar:
                src.extend(range(start, start + s.dim))
            else:
                src.extend([gate] * s.dim)
                gate += 1
            start += s.dim
        self.register_buffer("gate_src", torch.tensor(src, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., : self.rep.dim] * torch.sigmoid(x[..., self.gate_src])


MAX_T2_BASE_DIM = 5


def default_hidden_rep(vector: Rep, channels: int) -> Rep:
    """a*T0 + b*T1 + c*T2 of about `channels` dims, splitting the budget equally between ranks.

    A rank r (dim n^r) is used only if one copy fits in its share (n^r <= channels / 3). T2 is also
    limited to n <= MAX_T2_BASE_DIM: its T2 -> T2 solve is an SVD over n^4 unknowns (625: ~1 s;
    n = 6: ~15 s, n = 8: minutes). Without T2 the network still gates with the pairwise quadratic
    invariants of the T1 features (QuadraticInvariants); T2 adds higher-order ones.
    E.g. 128 channels: n=2 -> 43*T0 + 21*T1 + 11*T2, n=4 -> 43*T0 + 11*T1 + 3*T2, n=8 -> 64*T0 + 8*T1.
    """
    n = vector.dim
    ranks = [r for r in (0, 1, 2) if n**r <= channels / 3 and (r < 2 or n <= MAX_T2_BASE_DIM)] or [0]
    share = channels / len(ranks)
    pieces = {0: T0, 1: vector, 2: vector * vector}
    rep: Rep = DirectSum([])
    for r in ranks:
        rep = rep + max(1, round(share / n**r)) * pieces[r]
    return rep


class EMLPBlock(nn.Module):
    """rep_in -> hidden_rep: gate(EquivariantLinear(x) + QuadraticInvariants(x)), both into with_gates(hidden_rep).

    Shapes: [..., rep_in.dim] -> [..., hidden_rep.dim].
    """

    def __init__(self, rep_in: Rep, hidden_rep: Rep, tol: float = 1e-6) -> None:
        super().__init__()
        self.linear = EquivariantLinear(rep_in, with_gates(hidden_rep), tol)
        self.quadratic = QuadraticInvariants(rep_in, with_gates(hidden_rep), tol)
        self.gate = GatedNonlinearity(hidden_rep)

    @property
    def makes_invariants(self) -> bool:
        """Whether some non-scalar input feature reaches a scalar or gate channel."""
        return self.linear.makes_invariants or self.quadratic.mix is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.linear(x) + self.quadratic(x))


class EMLP(nn.Module):
    """num_layers x EMLPBlock on hidden_rep, then EquivariantLinear to rep_out.

    Shapes: input [B, rep_in.dim] (flattened in direct-sum order) -> [B, rep_out.dim].
    """

    def __init__(self, rep_in: Rep, rep_out: Rep, hidden_rep: Rep, num_layers: int = 3, tol: float = 1e-6) -> None:
        super().__init__()
        self.rep_in, self.rep_out, self.hidden_rep, self.tol = rep_in, rep_out, hidden_rep, tol
        blocks = [EMLPBlock(rep_in if i == 0 else hidden_rep, hidden_rep, tol) for i in range(num_layers)]
        self.net = nn.Sequential(*blocks, EquivariantLinear(hidden_rep if num_layers else rep_in, rep_out, tol))
        if num_layers and not any(b.makes_invariants for b in blocks):
            log.warning(
                "EMLP %r -> %r with hidden %r: no non-scalar feature has a linear or quadratic invariant, "
                "so every gate is constant and the network is affine in its input",
                rep_in, rep_out, hidden_rep,
            )

    @property
    def basis_sizes(self) -> list[int]:
        """Weight-basis size of each EquivariantLinear, input to output."""
        return [m.basis_size for m in self.modules() if isinstance(m, EquivariantLinear)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @classmethod
    def from_generators(
        cls,
        generators: Array,
        in_copies: int,
        out_copies: int,
        out_scalar: bool = False,
        hidden_channels: int | Rep = 128,
        num_layers: int = 3,
        tol: float = 1e-6,
    ) -> EMLP:
        """EMLP for in_copies * T1 -> out_copies * (T0 if out_scalar else T1), generators [c, n, n].

        The generators act on one n-vector (e.g. one 8-dim 2-body state); a window of 5 steps is
        in_copies=5, input [B, 5n]. Generators of the form kron(I_k, B) are rewritten as k copies of
        the b x b block (same flattening, exactly the same representation), so the hidden rep can
        hold T2 of the small block: the 2-body kron(I_4, J) becomes 20 * T1[2] in, 4 * T1[2] out.
        hidden_channels: an int for `default_hidden_rep` (of the block's T1), or a Rep.
        """
        block, k = split_repeated_block(generators)
        v = T1(block)
        hidden = hidden_channels if isinstance(hidden_channels, Rep) else default_hidden_rep(v, hidden_channels)
        return cls((in_copies * k) * v, (out_copies * (1 if out_scalar else k)) * (T0 if out_scalar else v),
                   hidden, num_layers, tol)


def split_repeated_block(generators: Array) -> tuple[Array, int]:
    """(B [c, b, b], k) with generators == kron(I_k, B) up to rounding, for the smallest such block b.

    Returns (generators, 1) when there is no repeated block. Learned generators from a `block`
    search space have this form exactly; merely approximate repeats are left dense.
    """
    g = np.asarray(generators, dtype=np.float64)
    g = g[None] if g.ndim == 2 else g
    n, scale = g.shape[-1], np.abs(g).max(initial=0.0)
    for b in range(1, n):
        if n % b == 0:
            block = g[:, :b, :b]
            if np.abs(g - repeat_block(block, n // b)).max(initial=0.0) <= 1e-12 * scale:
                return block, n // b
    return g, 1
