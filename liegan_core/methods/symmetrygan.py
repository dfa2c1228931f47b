"""SymmetryGAN (Desai, Nachman, Thaler; PRD 105, 096031, 2022): a GAN whose generator is one linear map.

The generator is a single learned matrix M (m x m, the search space's block, mask applied) that
transforms every sample: x -> kron(I, M) x, and a vector y likewise. There is no exponential map
and no random coefficient, so what is learned is one group ELEMENT, not a Lie algebra. A
PairDiscriminator tells original (x, y) pairs from transformed ones; the generator is trained
with the non-saturating BCE loss (as LieGAN's), one generator step then one discriminator step
per batch. With c channels, c elements are trained independently, each from its own random
initialisation against its own discriminator (Desai et al. map out a symmetry group by repeating
the fit from different initialisations; the channels are those repetitions).

Initialisation: M0 = expm(A) with A_ij ~ N(0, init_scale^2 / m): a random element of the
identity component of GL(m) (det > 0), so reaching a rotation never requires crossing a
singular matrix, and no rotation is built in.

Defaults: the LieGAN paper's comparison ran SymmetryGAN through LieGAN's own training script
(published command `main_lagan.py --g_init 2*2_factorization --lamda 1 --num_epochs 100 --model
sgan`), so the learning rates and Adam betas are LieGAN's (generator 1e-3 with betas (0.5, 0.999),
discriminator 2e-4 with betas (0.9, 0.999)). `lambda_identity` adds LieGAN's identity avoidance
(group.identity_regulariser, |mean cos(M x, x)|); Desai et al.'s loss has none,
so the default is 0; two_body.yaml sets 1.0 as in that published command, which is what drives
the learned element towards a 90-degree rotation (cos(Rx, x) = cos(angle) vanishes there).

Report in generator format: for each channel the principal matrix logarithm
L = scipy.linalg.logm(M) is taken and its real part kept (exp(L) = M when L is real, so L is the
generator whose time-1 flow is the learned element; its direction is what the similarity metric
compares). When M has a real negative eigenvalue the principal logarithm is complex (no real
logarithm on the principal branch; e.g. a 180-degree rotation): the real part is still reported
and `logm_complex` = 1 flags it, with the count in `negative_real_eigenvalues`. A singular M has
no logarithm: that channel is reported as zeros and flagged in `logm_failed`. The blocks are
then embedded by `space.effective` (kron(I, L * mask)). info also holds the learned elements
(`element_blocks`), their distance from orthogonality and, for 2 x 2 blocks, the angle of the
nearest rotation.
"""
from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn

from ..data.dataset import Dataset
from ..group import act_blocks, identity_regulariser
from ..nets import PairDiscriminator
from ..training import (
    Checkpointer,
    Progress,
    batches,
    check_finite,
    data_tensors,
    resolve_device,
    seed_everything,
    vector_inputs_only,
)
from . import register
from .base import Budget, Discovery, RunContext, SearchSpace

DEFAULTS: dict[str, Any] = {
    "lr_generator": 1e-3,
    "lr_discriminator": 2e-4,
    "betas_generator": [0.5, 0.999],
    "betas_discriminator": [0.9, 0.999],
    "lambda_identity": 0.0,
    "discriminator_hidden": [512, 512],
    "embedding_dim": 32,
    "init_scale": 1.0,
}


class LinearElements(nn.Module):
    """c learnable matrices [c, m, m] (mask applied), initialised as exponentials of random matrices."""

    def __init__(self, space: SearchSpace, init_scale: float):
        super().__init__()
        c, m = space.channels, space.matrix_size
        a = torch.randn(c, m, m, dtype=torch.float64) * (init_scale / np.sqrt(m))
        self.elements = nn.Parameter(torch.linalg.matrix_exp(a).float())
        mask = torch.ones(m, m) if space.mask is None else torch.as_tensor(space.mask, dtype=torch.float32)
        self.register_buffer("mask", mask)

    def forward(self) -> torch.Tensor:
        return self.elements * self.mask


def orthogonality_error(m: np.ndarray) -> np.ndarray:
    """||M^T M - I||_F / sqrt(m) per element [c]: 0 for an orthogonal matrix."""
    k = m.shape[-1]
    return np.linalg.norm(np.swapaxes(m, -1, -2) @ m - np.eye(k), axis=(-2, -1)) / np.sqrt(k)


def element_logarithms(elements: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """Real parts of the principal logarithms [c, m, m] and flags for complex or failed logarithms."""
    logs = np.zeros_like(elements)
    complex_log = failed = negative = 0
    for i, m in enumerate(elements):
        eig = np.linalg.eigvals(m)
        scale = max(1.0, float(np.abs(eig).max()))
        negative += int(np.sum((np.abs(eig.imag) <= 1e-9 * scale) & (eig.real < 0)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            log = scipy.linalg.logm(m) if np.abs(eig).min() > 1e-12 * scale else None
        if log is None or not np.all(np.isfinite(log)):
            failed += 1
            continue
        log = np.asarray(log)
        if np.iscomplexobj(log):
            if np.abs(log.imag).max() > 1e-8 * max(1.0, float(np.abs(log.real).max())):
                complex_log += 1
            log = log.real
        logs[i] = log
    flags = {
        "logm_complex": float(complex_log > 0),
        "logm_failed": float(failed > 0),
        "negative_real_eigenvalues": float(negative),
    }
    return logs, flags


@register("symmetrygan")
class SymmetryGAN:
    """SymmetryGAN: one learned linear transformation per channel; hyperparameters in DEFAULTS."""

    name = "symmetrygan"

    def skip(self, data: Dataset, space: SearchSpace) -> str | None:
        reason = vector_inputs_only(data, "SymmetryGAN")
        if reason:
            return reason
        return None

    def fit(
        self,
        data: Dataset,
        space: SearchSpace,
        budget: Budget,
        seed: int,
        params: dict[str, Any],
        ctx: RunContext,
    ) -> Discovery:
        hp = {**DEFAULTS, **params}
        device = resolve_device(ctx.device)
        gen = seed_everything(seed)
        x_all, y_all, label = data_tensors(data, device)
        c = space.channels
        elements = LinearElements(space, float(hp["init_scale"])).to(device)
        discs = nn.ModuleList(
            PairDiscriminator(
                x_all.shape[1:], y_all.shape[1:], data.y_rep, hp["discriminator_hidden"], int(hp["embedding_dim"])
            )
            for _ in range(c)
        ).to(device)
        # one Adam per parameter tensor is elementwise, so this trains the c channels independently
        opt_g = torch.optim.Adam(elements.parameters(), lr=hp["lr_generator"], betas=tuple(hp["betas_generator"]))
        opt_d = torch.optim.Adam(discs.parameters(), lr=hp["lr_discriminator"], betas=tuple(hp["betas_discriminator"]))
        lam = float(hp["lambda_identity"])
        ckpt = Checkpointer(
            ctx.workdir, ctx.checkpoint_every,
            {"elements": elements, "discriminators": discs, "opt_generator": opt_g, "opt_discriminator": opt_d}, gen,
        )
        start_epoch, log = ckpt.restore()

        n = x_all.shape[0]
        bar = Progress(budget.epochs - start_epoch, "symmetrygan", ctx.progress)
        for epoch in range(start_epoch, budget.epochs):
            t0 = time.perf_counter()
            sums = torch.zeros(3, device=device)
            steps = 0
            for step, idx in enumerate(batches(n, budget.batch_size, gen)):
                idx = idx.to(device)
                x, y = x_all[idx], y_all[idx]
                b = x.shape[0]
                real, fake = torch.ones(b, device=device), torch.zeros(b, device=device)
                mats = elements()
                norm = float(mats.detach().norm())
                discs.requires_grad_(False)
                adv = reg_id = loss_d = x.new_zeros(())
                moved = []
                for i in range(c):
                    g = mats[i].expand(b, -1, -1)
                    gx, gy = act_blocks(g, x, data.x_rep), act_blocks(g, y, data.y_rep)
                    check_finite("transformed data M x", gx.detach(), epoch, step, norm)
                    adv = adv + F.binary_cross_entropy_with_logits(discs[i](gx, gy), real)
                    reg_id = reg_id + identity_regulariser(gx, x)
                    moved.append((gx.detach(), gy.detach()))
                loss_g = adv + lam * reg_id
                check_finite("generator loss", loss_g.detach(), epoch, step, norm)
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()

                discs.requires_grad_(True)
                for i, (gx, gy) in enumerate(moved):
                    logits = discs[i](torch.cat([x, gx]), torch.cat([y, gy]))
                    loss_d = loss_d + F.binary_cross_entropy_with_logits(logits, torch.cat([real, fake]))
                check_finite("discriminator loss", loss_d.detach(), epoch, step, norm)
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                sums += torch.stack([loss_d.detach(), adv.detach(), reg_id.detach()]) / c
                steps += 1
            means = (sums / steps).tolist()
            mats_np = elements().detach().cpu().double().numpy()
            row = {
                "epoch": epoch + 1,
                "loss_discriminator": means[0],
                "loss_generator_adversarial": means[1],
                "regulariser_identity": means[2],
                "element_norm": float(np.linalg.norm(mats_np)),
                "orthogonality_error": float(orthogonality_error(mats_np).max()),
                "seconds": time.perf_counter() - t0,
            }
            log.append(row)
            bar.update(1, d=means[0], g=means[1], id=means[2])
            ckpt.save_if_due(epoch + 1, budget.epochs, log)
        bar.close()

        mats_np = elements().detach().cpu().double().numpy()
        logs, flags = element_logarithms(mats_np)
        info: dict[str, Any] = {
            "element_blocks": mats_np,
            "generator_blocks": logs,
            "orthogonality_error": float(orthogonality_error(mats_np).max()),
            **flags,
        }
        if space.matrix_size == 2:
            angles = np.degrees(np.arctan2(mats_np[:, 1, 0] - mats_np[:, 0, 1], mats_np[:, 0, 0] + mats_np[:, 1, 1]))
            info.update(
                {"rotation_angle_deg": float(angles[0])} if c == 1
                else {f"rotation_angle_deg_{i}": float(a) for i, a in enumerate(angles)}
            )
        return Discovery(
            generators=space.effective(logs),
            # the learned element, its inverse and the identity: exp(w L) for w in {-1, 0, 1}
            coefficient_distribution={"distribution": "integer", "low": -1, "high": 1},
            log=log,
            info=info,
        )
