"""LieGNN: a LorentzNet-style graph network whose invariants use a given metric J.

Written from the equations of LorentzNet (Gong et al., JHEP 2022) and the LieGAN paper's LieGNN
(Yang et al., ICML 2023, Section 5.3), where the Minkowski metric of LorentzNet is replaced by the
metric J preserved by the discovered generators (L^T J + J L = 0, `lie.invariant_metric`).

For particles with 4-momenta x_i and scalars h_i, one Lorentz group equivariant block (LGEB) is

    m_ij  = phi_e(h_i, h_j, psi(<x_i - x_j, x_i - x_j>_J), psi(<x_i, x_j>_J))
    x_i' = x_i + c * sum_j phi_x(m_ij) x_j
    h_i' = h_i + phi_h(h_i, sum_j phi_m(m_ij) m_ij)

with <a, b>_J = a^T J b, psi(a) = sign(a) log(|a| + 1), phi_m a sigmoid edge weight and the sums
over the jet's real constituents (j != i; padded slots are masked out). After the last block the
h_i are mean-pooled over real constituents and decoded to two class logits.

Differences from LorentzNet, each because this benchmark compares metrics rather than chasing the
best tagger: no beam "particles" are added (they would break the symmetry under test down to the
subgroup fixing the beam axis), no particle-type inputs (our jets carry only 4-momenta), and the
initial scalars are a learned embedding of psi(<x_i, x_i>_J) (the metric norm of each constituent:
its squared mass under Minkowski, under J = I its Euclidean norm). Every quantity that enters h is
invariant under the group preserving J, so the output is exactly invariant under it.

The metric is rescaled to Frobenius norm 2, that of diag(1, -1, -1, -1) and of I_4, so the
variants differ only in the metric's direction, not its scale. The inner products enter psi
divided by a constant `invariant_scale`, set by `calibrate` to the median |<x_i, x_j>_J| over
pairs of real constituents of (a sample of) the training jets. Without it psi sees values of very
different sizes per metric: for nearly collinear, nearly massless constituents the Minkowski
products (pair masses) are ~300 times smaller than the Euclidean ones (energies squared), and at
100 GeV units they sit in psi's linear range near 0, where the network learns almost nothing.
Dividing by a constant keeps every invariance exact.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..nets import mlp

METRIC_NORM = 2.0
CALIBRATION_JETS = 1000


def psi(a: torch.Tensor) -> torch.Tensor:
    """sign(a) log(|a| + 1): compresses the wide range of inner products, keeps their sign."""
    return torch.sign(a) * torch.log1p(a.abs())


def normalised_metric(metric: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A symmetric 4x4 (n x n) metric rescaled to Frobenius norm METRIC_NORM, float64 [n, n]."""
    j = torch.as_tensor(np.asarray(metric, dtype=np.float64))
    if j.ndim != 2 or j.shape[0] != j.shape[1]:
        raise ValueError(f"metric must be a square matrix, got shape {list(j.shape)}")
    if not torch.allclose(j, j.T, atol=1e-10 * max(float(j.abs().max()), 1.0)):
        raise ValueError("metric must be symmetric")
    norm = float(torch.linalg.matrix_norm(j))
    if not norm > 0 or not math.isfinite(norm):
        raise ValueError(f"metric must be finite and non-zero, got Frobenius norm {norm}")
    return j * (METRIC_NORM / norm)


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of node features h [B, P, H] over the real nodes of mask [B, P] (bool) -> [B, H]."""
    m = mask.to(h.dtype).unsqueeze(-1)
    return (h * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


class LGEB(nn.Module):
    """One Lorentz group equivariant block with invariants under the metric `metric` [n, n].

    `metric` is passed in (the network's buffer) so all blocks share one J.
    """

    def __init__(self, hidden: int, c_weight: float, dropout: float):
        super().__init__()
        self.c_weight = c_weight
        # phi_e's first linear layer on [h_i, h_j, invariants], split by input so the node terms are
        # computed once per node and broadcast over pairs (no [B, P, P, 2H + 2] concatenation)
        self.edge_i = nn.Linear(hidden, hidden)
        self.edge_j = nn.Linear(hidden, hidden, bias=False)
        self.edge_inv = nn.Linear(2, hidden, bias=False)
        self.phi_e = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.phi_m = nn.Sequential(nn.Linear(hidden, 1), nn.Sigmoid())
        self.phi_x = mlp([hidden, hidden, 1])
        self.phi_h = nn.Sequential(mlp([2 * hidden, hidden, hidden]), nn.Dropout(dropout))

    def forward(
        self, h: torch.Tensor, x: torch.Tensor, metric: torch.Tensor, scale: torch.Tensor, edge_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """h [B, P, H], x [B, P, n], metric [n, n], scale [] (invariants are divided by it),
        edge_mask [B, P, P] (1 for real i != j) -> (h', x').

        The edge tensors are [B, P, P, H]: P is the number of leading constituents kept (tens).
        """
        jx = x @ metric  # [B, P, n]: x_i^T J, J symmetric
        dot = jx @ x.transpose(1, 2)  # <x_i, x_j>_J [B, P, P]
        norm = torch.diagonal(dot, dim1=1, dim2=2)  # <x_i, x_i>_J [B, P]
        dist = norm.unsqueeze(2) + norm.unsqueeze(1) - 2.0 * dot  # <x_i - x_j, x_i - x_j>_J
        invariants = torch.stack([psi(dist / scale), psi(dot / scale)], dim=-1)  # [B, P, P, 2]
        pre = self.edge_inv(invariants) + self.edge_i(h).unsqueeze(2) + self.edge_j(h).unsqueeze(1)
        m = self.phi_e(pre) * edge_mask.unsqueeze(-1)  # m_ij [B, P, P, H]
        x_new = x + self.c_weight * torch.einsum("bij,bjn->bin", self.phi_x(m).squeeze(-1) * edge_mask, x)
        agg = (self.phi_m(m) * m).sum(dim=2)  # sum_j w_ij m_ij [B, P, H]
        h_new = h + self.phi_h(torch.cat([h, agg], dim=-1))
        return h_new, x_new


class LieGNN(nn.Module):
    """LorentzNet-style jet classifier with invariants under `metric` (buffer [4, 4]).

    Input: constituents [B, P, 4] (E, px, py, pz), already scaled (e.g. / 100 GeV), and a mask
    [B, P] (True for real constituents). Output: class logits [B, 2] (1 = top). Call `calibrate`
    on training jets before training to set the invariants' scale (default 1).
    """

    def __init__(
        self, metric: np.ndarray, hidden: int = 48, layers: int = 3, c_weight: float = 5e-3, dropout: float = 0.2
    ):
        super().__init__()
        self.register_buffer("metric", normalised_metric(metric).to(torch.get_default_dtype()))
        self.register_buffer("invariant_scale", torch.tensor(1.0))
        self.embed = nn.Linear(1, hidden)
        self.blocks = nn.ModuleList(LGEB(hidden, c_weight, dropout) for _ in range(layers))
        self.decoder = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 2))

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor, mask: torch.Tensor) -> float:
        """Set `invariant_scale` to the median |<x_i, x_j>_J| over real pairs i != j of the first
        CALIBRATION_JETS jets of x [N, P, 4] (mask [N, P]); returns it. Falls back to 1 if all vanish.
        """
        x, mask = x[:CALIBRATION_JETS], mask[:CALIBRATION_JETS]
        metric = self.metric.to(x.dtype)
        dot = torch.einsum("bpi,ij,bqj->bpq", x, metric, x)
        eye = torch.eye(x.shape[1], dtype=torch.bool, device=x.device)
        pairs = dot[mask.unsqueeze(2) & mask.unsqueeze(1) & ~eye].abs()
        scale = float(pairs.median()) if pairs.numel() else 0.0
        self.invariant_scale.fill_(scale if scale > 0 and math.isfinite(scale) else 1.0)
        return float(self.invariant_scale)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        maskf = mask.to(x.dtype)
        x = x * maskf.unsqueeze(-1)
        metric = self.metric.to(x.dtype)
        scale = self.invariant_scale.to(x.dtype)
        eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
        edge_mask = maskf.unsqueeze(2) * maskf.unsqueeze(1) * (1.0 - eye)
        self_norm = torch.einsum("bpi,ij,bpj->bp", x, metric, x)
        h = self.embed(psi(self_norm / scale).unsqueeze(-1)) * maskf.unsqueeze(-1)
        for block in self.blocks:
            h, x = block(h, x, metric, scale, edge_mask)
            h = h * maskf.unsqueeze(-1)
        return self.decoder(masked_mean(h, mask))


class ParticleFlowBaseline(nn.Module):
    """Non-equivariant baseline: a particle-flow / DeepSets network on the raw 4-momenta.

    Each constituent's (E, px, py, pz) [B, P, 4] goes through a per-particle MLP, the results are
    mean-pooled over real constituents (mask [B, P]) and decoded to logits [B, 2]. It has the same
    width and depth of per-particle layers as LieGNN and sees the same inputs, but nothing ties it
    to any group: it is permutation-invariant only.
    """

    def __init__(self, hidden: int = 48, layers: int = 3, dropout: float = 0.2):
        super().__init__()
        self.phi = mlp([4, *([hidden] * (layers + 1))])
        self.decoder = nn.Sequential(
            nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 2)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.decoder(masked_mean(self.phi(x), mask))
