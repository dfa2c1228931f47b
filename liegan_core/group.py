"""Torch side of the Lie algebra: a learnable generator basis, coefficient sampling, group actions.

Shared by every method and model that transforms data with g = exp(sum_i w_i L_i), so the
action of a group element on a vector, a scalar or a label is defined once.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

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
    raise ValueError(f"no vector action for representation type '{kind}'")


def act_blocks(g_block: torch.Tensor, data: torch.Tensor, rep: dict[str, Any]) -> torch.Tensor:
    """Apply block matrices g_block [B, m, m] to data of representation `rep`: a vector's every
    m-block is multiplied by g_block (the action of kron(I, g_block)); scalars and labels stay put."""
    if rep["type"] != "vector":
        return act(g_block, data, rep)
    m = g_block.shape[-1]
    shape = data.shape
    blocks = data.reshape(shape[0], -1, m)
    return torch.bmm(blocks, g_block.transpose(1, 2)).reshape(shape)


def identity_regulariser(gx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """LieGAN's identity avoidance |mean cos(g.x, x)|, the cosine taken per vector (last axis).

    As in the published code: the absolute value of the mean, so it is minimised when the
    transformation angles spread out (E[cos] -> 0), not merely when each is far from 0.
    """
    if x.dim() == 2:
        gx, x = gx.unsqueeze(1), x.unsqueeze(1)
    return F.cosine_similarity(gx, x, dim=-1).mean().abs()


def orthogonality_regulariser(generators: torch.Tensor) -> torch.Tensor:
    """LieGAN's channel term: sum over pairs i < j of |cos(L_i, L_j)|, zero for a single channel."""
    c = generators.shape[0]
    if c < 2:
        return generators.new_zeros(())
    flat = F.normalize(generators.reshape(c, -1), dim=1)
    cos = (flat @ flat.T).abs()
    return torch.triu(cos, diagonal=1).sum()


class LieGenerator(nn.Module):
    """c learnable generator blocks [c, m, m] inside a search space, and the coefficients' law.

    The effective generator on the data is kron(I_{n/m}, block * mask); the action on a vector of
    dimension n is computed per m-block, so exp is only ever taken of m x m matrices.
    """

    def __init__(self, space: SearchSpace, init_scale: float = 1.0, generator: torch.Generator | None = None):
        super().__init__()
        self.space = space
        m = space.matrix_size
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
