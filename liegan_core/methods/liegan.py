"""LieGAN (Yang, Walters, Dehmamy, Yu; ICML 2023): generative adversarial symmetry discovery.

A generator holds c Lie algebra generators L_i; it samples coefficients w, builds
g = exp(sum_i w_i L_i) and transforms each pair (x, y) to (g.x, g.y). A discriminator tells
original from transformed pairs. The generator loss adds lambda * |mean cos(g.x, x)| (identity
avoidance) and eta * sum_{i != j} |cos(L_i, L_j)| (channel orthogonality). Per batch: one
generator step, then one discriminator step (Adam, the paper's learning rates and betas).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.dataset import Dataset
from ..group import LieGenerator, identity_regulariser, orthogonality_regulariser
from ..nets import PairDiscriminator
from ..training import (
    Progress,
    batches,
    check_finite,
    load_checkpoint,
    resolve_device,
    save_checkpoint,
    seed_everything,
)
from . import register
from .base import Budget, Discovery, RunContext, SearchSpace

DEFAULTS: dict[str, Any] = {
    "lr_generator": 1e-3,
    "lr_discriminator": 2e-4,
    "betas_generator": [0.5, 0.999],
    "betas_discriminator": [0.9, 0.999],
    "lambda_identity": 1.0,
    "eta_orthogonality": 0.1,
    "discriminator_hidden": [512, 512],
    "embedding_dim": 32,
    "init_scale": 1.0,
    "max_exponent_norm": None,
}


@register("liegan")
class LieGAN:
    """The LieGAN method; hyperparameters and their defaults in DEFAULTS."""

    name = "liegan"

    def skip(self, data: Dataset, space: SearchSpace) -> str | None:
        if data.x_rep["type"] != "vector":
            return f"x representation '{data.x_rep['type']}' is not supported by this LieGAN implementation"
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
        x_all = torch.as_tensor(data.x, dtype=torch.float32, device=device)
        label = data.y_rep["type"] == "label"
        y_all = torch.as_tensor(data.y, dtype=torch.long if label else torch.float32, device=device)
        generator = LieGenerator(space, init_scale=float(hp["init_scale"])).to(device)
        disc = PairDiscriminator(
            x_all.shape[1:], y_all.shape[1:], data.y_rep, hp["discriminator_hidden"], int(hp["embedding_dim"])
        ).to(device)
        opt_g = torch.optim.Adam(generator.parameters(), lr=hp["lr_generator"], betas=tuple(hp["betas_generator"]))
        opt_d = torch.optim.Adam(disc.parameters(), lr=hp["lr_discriminator"], betas=tuple(hp["betas_discriminator"]))
        lam, eta = float(hp["lambda_identity"]), float(hp["eta_orthogonality"])
        max_norm = hp["max_exponent_norm"]
        sample_gen = gen if device.type == "cpu" else None

        ckpt_path = Path(ctx.workdir) / "checkpoint.pt" if ctx.workdir else None
        log: list[dict[str, Any]] = []
        start_epoch = 0
        clip_events = 0
        state = load_checkpoint(ckpt_path) if ckpt_path else None
        if state is not None:
            generator.load_state_dict(state["generator"])
            disc.load_state_dict(state["discriminator"])
            opt_g.load_state_dict(state["opt_generator"])
            opt_d.load_state_dict(state["opt_discriminator"])
            gen.set_state(state["rng"])
            torch.set_rng_state(state["torch_rng"])
            start_epoch = int(state["epoch"])
            log = [dict(zip(state["log_keys"], row)) for row in state["log_rows"].tolist()]
            clip_events = int(state["clip_events"])

        n = x_all.shape[0]
        ones = torch.ones(budget.batch_size, device=device)
        zeros = torch.zeros(budget.batch_size, device=device)
        bar = Progress(budget.epochs - start_epoch, "liegan", ctx.progress)
        for epoch in range(start_epoch, budget.epochs):
            t0 = time.perf_counter()
            sums = torch.zeros(4, device=device)
            steps = 0
            for step, idx in enumerate(batches(n, budget.batch_size, gen)):
                idx = idx.to(device)
                x, y = x_all[idx], y_all[idx]
                b = x.shape[0]
                w = generator.sample_coefficients(b, sample_gen)
                algebra = torch.einsum("bc,cij->bij", w, generator.generators())
                if max_norm is not None:
                    norms = algebra.flatten(1).norm(dim=1).clamp_min(1e-12)
                    over = norms > max_norm
                    clip_events += int(over.sum())
                    algebra = algebra * torch.where(over, max_norm / norms, torch.ones_like(norms))[:, None, None]
                g = torch.linalg.matrix_exp(algebra)
                gx = generator.transform(g, x, data.x_rep)
                gy = generator.transform(g, y, data.y_rep)

                disc.requires_grad_(False)
                logits_fake = disc(gx, gy)
                adv = F.binary_cross_entropy_with_logits(logits_fake, ones[:b])
                reg_id = identity_regulariser(gx, x)
                reg_orth = orthogonality_regulariser(generator.generators())
                loss_g = adv + lam * reg_id + eta * reg_orth
                gnorm = float(generator.generators().detach().norm())
                check_finite("transformed data g.x", gx.detach(), epoch, step, gnorm)
                check_finite("generator loss", loss_g.detach(), epoch, step, gnorm)
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()

                disc.requires_grad_(True)
                both_x = torch.cat([x, gx.detach()])
                both_y = torch.cat([y, gy.detach()])
                logits = disc(both_x, both_y)
                # mean over the concatenated real and fake halves = (BCE_real + BCE_fake) / 2
                loss_d = F.binary_cross_entropy_with_logits(logits, torch.cat([ones[:b], zeros[:b]]))
                check_finite("discriminator loss", loss_d.detach(), epoch, step, gnorm)
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                sums += torch.stack([loss_d.detach(), adv.detach(), reg_id.detach(), reg_orth.detach()])
                steps += 1
            means = (sums / steps).tolist()
            row = {
                "epoch": epoch + 1,
                "loss_discriminator": means[0],
                "loss_generator_adversarial": means[1],
                "regulariser_identity": means[2],
                "regulariser_orthogonality": means[3],
                "generator_norm": float(generator.generators().detach().norm()),
                "clip_events": clip_events,
                "seconds": time.perf_counter() - t0,
            }
            log.append(row)
            bar.update(1, d=means[0], g=means[1], id=means[2])
            last = epoch + 1 == budget.epochs
            if ckpt_path and (last or (epoch + 1) % ctx.checkpoint_every == 0):
                keys = list(log[0].keys())
                save_checkpoint(
                    ckpt_path,
                    {
                        "generator": generator.state_dict(),
                        "discriminator": disc.state_dict(),
                        "opt_generator": opt_g.state_dict(),
                        "opt_discriminator": opt_d.state_dict(),
                        "rng": gen.get_state(),
                        "torch_rng": torch.get_rng_state(),
                        "epoch": epoch + 1,
                        "log_keys": keys,
                        "log_rows": torch.tensor([[float(r[k]) for k in keys] for r in log], dtype=torch.float64),
                        "clip_events": clip_events,
                    },
                )
        bar.close()
        blocks = generator.generators().detach().cpu().double().numpy()
        return Discovery(
            generators=space.effective(blocks),
            coefficient_distribution=generator.coefficient_distribution(),
            log=log,
            info={"clip_events": clip_events, "blocks": blocks},
        )
