"""Torch side of the Lie algebra: a learnable generator basis, coefficient sampling, group actions.

Shared by every method and model that transforms data with g = exp(sum_i w_i L_i), so the
action of a group element on a vector, a scalar or a label is defined once.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import UserError
from .methods.base import SearchSpace


def act_vector(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Apply g [B, n, n] to vectors v [B, ..., n] along the last axis."""
    b, n = v.shape[0], v.shape[-1]
    flat = v.reshape(b, -1, n)
    return torch.bmm(flat, g.transpose(1, 2)).reshape(v.shape)


def act(g: torch.Tensor, data: torch.Tensor, rep: dict[str, Any]) -> torch.Tensor:
    """Transform `data` by group elements g according to its representation type."""
    kind = rep["type"]
    if kind == "vector":
        return act_vector(g, data)
    if kind in ("scalar", "label"):
        return data
    if kind == "grid":
        from .data.digits import warp_images

        return warp_images(data, g)
    raise ValueError(f"no action for representation type '{kind}'")


def act_blocks(g_block: torch.Tensor, data: torch.Tensor, rep: dict[str, Any]) -> torch.Tensor:
    """Apply block matrices g_block [B, m, m] to data of representation `rep`: a vector's every
    m-block is multiplied by g_block (the action of kron(I, g_block)); scalars and labels stay put."""
    if rep["type"] != "vector":
        return act(g_block, data, rep)
    m = g_block.shape[-1]
    shape = data.shape
    blocks = data.reshape(shape[0], -1, m)
    return torch.bmm(blocks, g_block.transpose(1, 2)).reshape(shape)


_EXPM_SERIES_TERMS = 8
_EXPM_SERIES_COEF: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}


def _expm_series_coef(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[terms, 3] Taylor coefficients in delta of C = cosh(sqrt delta), S = sinh(sqrt delta)/sqrt delta, dS/ddelta."""
    key = (dtype, device)
    if key not in _EXPM_SERIES_COEF:
        k = torch.arange(_EXPM_SERIES_TERMS, dtype=torch.float64, device="cpu")
        inv_fact = lambda n: torch.exp(-torch.lgamma(n + 1))  # noqa: E731
        coef = torch.stack([inv_fact(2 * k), inv_fact(2 * k + 1), (k + 1) * inv_fact(2 * k + 3)], 1)
        _EXPM_SERIES_COEF[key] = coef.to(dtype=dtype, device=device)
    return _EXPM_SERIES_COEF[key]


def _expm_cs(delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """C(delta) = cosh(sqrt delta), S(delta) = sinh(sqrt delta) / sqrt delta and S'(delta), elementwise.

    All three are entire functions of delta (cos / sin for delta < 0): a Taylor series for
    |delta| < 1 (8 terms: truncation < 1e-13) avoids 0/0 and the cancellation in S' = (C - S) / (2 delta).
    """
    coef = _expm_series_coef(delta.dtype, delta.device)
    powers = delta.unsqueeze(-1).expand(*delta.shape, _EXPM_SERIES_TERMS - 1).cumprod(-1)
    series = torch.addmm(coef[0], powers.reshape(-1, _EXPM_SERIES_TERMS - 1), coef[1:]).reshape(*delta.shape, 3)
    r = delta.abs().sqrt()
    hyperbolic = torch.stack([r.cosh(), r.sinh()], -1)
    circular = torch.stack([r.cos(), r.sin()], -1)
    c, s = torch.where((delta > 0).unsqueeze(-1), hyperbolic, circular).unbind(-1)
    s = s / r
    closed = torch.stack([c, s, (c - s) / (2 * delta)], -1)
    out = torch.where((delta.abs() < 1).unsqueeze(-1), series, closed)
    return out[..., 0], out[..., 1], out[..., 2]


class _Expm2x2(torch.autograd.Function):
    """exp(A) for a batch of 2 x 2 matrices in closed form, with an analytic backward.

    A = t I + B with t = tr(A)/2 and B traceless, B^2 = delta I (delta = -det B), so
    exp(A) = e^t (C(delta) I + S(delta) B). A handful of elementwise ops instead of the general
    Pade / Taylor machinery of torch.linalg.matrix_exp, whose cost grows with the batch.
    """

    @staticmethod
    def forward(ctx: Any, a_mat: torch.Tensor) -> torch.Tensor:
        a, b, c, d = a_mat.reshape(*a_mat.shape[:-2], 4).unbind(-1)
        p = 0.5 * (a - d)
        cc, s, ds = _expm_cs(p * p + b * c)
        e = torch.exp(0.5 * (a + d))
        ec, es = e * cc, e * s
        esp = es * p
        g = torch.stack([ec + esp, es * b, es * c, ec - esp], -1).reshape(a_mat.shape)
        ctx.save_for_backward(g, p, b, c, es, e * ds)
        return g

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        g, p, b, c, es, eds = ctx.saved_tensors
        u00, u01, u10, u11 = grad.reshape(*grad.shape[:-2], 4).unbind(-1)
        t_bar = (grad * g).sum((-1, -2))  # d e^t / dt = e^t
        u_diff = u00 - u11
        # through delta = p^2 + bc: d(e C)/d delta = e S / 2, d(e S)/d delta = e S'
        delta_bar = (u00 + u11) * (0.5 * es) + (u_diff * p + u01 * b + u10 * c) * eds
        p_bar = es * u_diff + 2 * p * delta_bar
        b_bar = es * u01 + c * delta_bar
        c_bar = es * u10 + b * delta_bar
        return torch.stack([0.5 * (t_bar + p_bar), b_bar, c_bar, 0.5 * (t_bar - p_bar)], -1).reshape(grad.shape)


def expm_2x2(a: torch.Tensor) -> torch.Tensor:
    """Matrix exponential of 2 x 2 matrices [..., 2, 2] in closed form (differentiable)."""
    if a.shape[-2:] != (2, 2):
        raise ValueError(f"expm_2x2 needs [..., 2, 2] matrices, got {list(a.shape)}")
    return _Expm2x2.apply(a)


def expm(a: torch.Tensor) -> torch.Tensor:
    """Matrix exponential of a batch [..., m, m]: closed form for m = 2, torch.linalg.matrix_exp otherwise."""
    if a.shape[-2:] == (2, 2):
        return expm_2x2(a)
    return torch.linalg.matrix_exp(a)


def identity_regulariser(gx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """LieGAN's identity avoidance |mean cos(g.x, x)|, the cosine taken per vector (last axis).

    As in the published code: the absolute value of the mean, so it is minimised when the
    transformation angles spread out (E[cos] -> 0), not merely when each is far from 0.
    """
    if x.dim() == 2:
        gx, x = gx.unsqueeze(1), x.unsqueeze(1)
    return F.cosine_similarity(gx, x, dim=-1).mean().abs()


def stacked_identity_regulariser(gx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """identity_regulariser per member of a stack: |mean cos(g.x, x)| over vectors (last axis), -> [S]."""
    return F.cosine_similarity(gx, x, dim=-1).reshape(x.shape[0], -1).mean(1).abs()


def fourier_identity_regulariser(gx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Identity avoidance for images [B, C, H, W]: |mean cos| between the 2-D Fourier magnitudes.

    Fourier magnitudes ignore translations (and the zero fill at the border matters little), so
    the generator is pushed away from the identity by rotating or scaling, not by shifting.
    """
    mag_gx = torch.fft.rfft2(gx).abs().flatten(1)
    mag_x = torch.fft.rfft2(x).abs().flatten(1)
    return F.cosine_similarity(mag_gx, mag_x, dim=1).mean().abs()


def orthogonality_regulariser(generators: torch.Tensor, n: int) -> torch.Tensor:
    """LieGAN's channel term n * sum over pairs i < j of |cos(L_i, L_j)|, zero for a single channel.

    generators: [c, m, m]; n: the dimension the effective generators act on (search_space.n). The
    published code (`channel_corr`) rescales each generator to squared norm n before taking the
    pairwise products, so its penalty is n times the sum of |cos|; eta_orthogonality multiplies
    that quantity, as the published --eta does. (cos is the same for a block and for kron(I, block).)
    """
    c = generators.shape[0]
    if c < 2:
        return generators.new_zeros(())
    flat = F.normalize(generators.reshape(c, -1), dim=1)
    cos = (flat @ flat.T).abs()
    return n * torch.triu(cos, diagonal=1).sum()


def default_init_scale(space: SearchSpace) -> float:
    """Std of the initial generator entries under `init_scale: auto`: the published code's conventions.

    A full search space (one m x m matrix, no mask; the published `g_init random`) starts from
    Kaiming-normal entries, std sqrt(2)/m (fan-in m * m); a block factorisation (the published
    `2*2_factorization`, N(0, 1) entries) or a masked space starts from N(0, 1). The scale matters:
    with std 1 in a full 3 x 3 or 4 x 4 space the generator tends to stay near its random start
    (docs/tasks.md has the measurements).
    """
    full = space.copies == 1 and space.mask is None
    return float(np.sqrt(2.0) / space.matrix_size) if full else 1.0


def resolve_init_scale(value: Any, space: SearchSpace, method: str) -> float:
    """A method's init_scale setting: 'auto' (default_init_scale) or a positive number; UserError otherwise."""
    if value == "auto":
        return default_init_scale(space)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise UserError(f"methods.{method}.init_scale: expected 'auto' or a positive number, got {value!r}")
    return float(value)


class LieGenerator(nn.Module):
    """c learnable generator blocks [c, m, m] inside a search space, and the coefficients' law.

    The effective generator on the data is kron(I_{n/m}, block * mask); the action on a vector of
    dimension n is computed per m-block, so exp is only ever taken of m x m matrices.
    """

    def __init__(self, space: SearchSpace, init_scale: float | None = None, generator: torch.Generator | None = None):
        super().__init__()
        self.space = space
        m = space.matrix_size
        if init_scale is None:
            init_scale = default_init_scale(space)
        self.blocks = nn.Parameter(init_scale * torch.randn(space.channels, m, m, generator=generator))
        mask = torch.ones(m, m) if space.mask is None else torch.as_tensor(space.mask, dtype=torch.float32)
        self.register_buffer("mask", mask)
        coeff = space.coefficients
        self.distribution = coeff.get("distribution", "normal")
        if self.distribution not in ("normal", "uniform", "integer"):
            raise ValueError(f"unknown coefficient distribution '{self.distribution}'")
        log_sigma = torch.log(torch.full((space.channels,), float(coeff.get("sigma", 1.0))))
        if coeff.get("learnable", False):
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)
        self.low = float(coeff.get("low", -1.0))
        self.high = float(coeff.get("high", 1.0))

    def generators(self) -> torch.Tensor:
        """Masked blocks [c, m, m]."""
        return self.blocks * self.mask

    def sample_coefficients(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """w [batch, c] drawn from the coefficient distribution."""
        c = self.space.channels
        dev = self.blocks.device
        if self.distribution == "normal":
            return torch.randn(batch, c, device=dev, generator=generator) * self.log_sigma.exp()
        if self.distribution == "uniform":
            return self.low + (self.high - self.low) * torch.rand(batch, c, device=dev, generator=generator)
        lo, hi = int(self.low), int(self.high)
        return torch.randint(lo, hi + 1, (batch, c), device=dev, generator=generator).to(self.blocks.dtype)

    def group_elements(self, w: torch.Tensor) -> torch.Tensor:
        """g = exp(sum_i w_i L_i) as blocks [B, m, m]."""
        algebra = torch.einsum("bc,cij->bij", w, self.generators())
        return torch.linalg.matrix_exp(algebra)

    def transform(self, g_block: torch.Tensor, data: torch.Tensor, rep: dict[str, Any]) -> torch.Tensor:
        """Apply block elements [B, m, m] to data of representation `rep` (vectors act per block)."""
        return act_blocks(g_block, data, rep)

    def coefficient_distribution(self) -> dict[str, Any]:
        out: dict[str, Any] = {"distribution": self.distribution}
        if self.distribution == "normal":
            out["sigma"] = self.log_sigma.exp().detach().cpu().tolist()
        else:
            out["low"], out["high"] = self.low, self.high
        return out


def pick(t: torch.Tensor, seeds: slice) -> torch.Tensor:
    """t[seeds]; t itself for all seeds, since even a full slice's backward allocates and fills a zero tensor."""
    return t if seeds == slice(None) else t[seeds]


class StackedGenerator(nn.Module):
    """S LieGenerators' blocks [S, c, m, m], mask and coefficient law, for an ensemble of seeds."""

    def __init__(self, generators: Sequence[LieGenerator]):
        super().__init__()
        first = generators[0]
        self.blocks = nn.Parameter(torch.stack([g.blocks.detach() for g in generators]))
        self.register_buffer("mask", first.mask.detach().clone())
        log_sigma = torch.stack([g.log_sigma.detach() for g in generators])
        if isinstance(first.log_sigma, nn.Parameter):
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)
        self.distribution, self.low, self.high = first.distribution, first.low, first.high

    def generators(self, seeds: slice = slice(None)) -> torch.Tensor:
        """Masked blocks [S, c, m, m] (of the seeds selected by `seeds`)."""
        return pick(self.blocks, seeds) * self.mask

    def draw(self, rows: int, gen: torch.Generator) -> torch.Tensor:
        """One seed's raw coefficient draws [rows, c] on the CPU (scaled by `coefficients`)."""
        c = self.blocks.shape[1]
        if self.distribution == "normal":
            return torch.randn(rows, c, generator=gen, device="cpu")
        if self.distribution == "uniform":
            return self.low + (self.high - self.low) * torch.rand(rows, c, generator=gen, device="cpu")
        return torch.randint(int(self.low), int(self.high) + 1, (rows, c), generator=gen, device="cpu").float()

    def coefficients(self, raw: torch.Tensor, seeds: slice = slice(None)) -> torch.Tensor:
        """w [S, B, c] from raw draws [S, B, c] (a learnable sigma enters here, so it gets gradients)."""
        if self.distribution == "normal":
            return raw * pick(self.log_sigma, seeds).exp().unsqueeze(1)
        return raw

    def coefficient_distribution(self, s: int) -> dict[str, Any]:
        """Seed s's coefficient law, as LieGenerator.coefficient_distribution."""
        out: dict[str, Any] = {"distribution": self.distribution}
        if self.distribution == "normal":
            out["sigma"] = self.log_sigma[s].exp().detach().cpu().tolist()
        else:
            out["low"], out["high"] = self.low, self.high
        return out


def stacked_orthogonality_regulariser(generators: torch.Tensor, n: int) -> torch.Tensor:
    """group.orthogonality_regulariser per seed: n * sum_{i<j} |cos(L_i, L_j)| for [S, c, m, m] -> [S]."""
    s, c = generators.shape[:2]
    if c < 2:
        return generators.new_zeros(s)
    flat = F.normalize(generators.reshape(s, c, -1), dim=2)
    cos = torch.bmm(flat, flat.transpose(1, 2)).abs()
    return n * torch.triu(cos, diagonal=1).sum((1, 2))
