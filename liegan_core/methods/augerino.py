"""Augerino+ as in the LieGAN paper's comparison (after Benton et al., NeurIPS 2020, "Augerino").

A learned augmentation g = exp(sum_i w_i L_i), with the same Lie algebra generator as LieGAN
(group.LieGenerator: the search space's blocks, mask and coefficient law), is trained jointly
with a predictor on the task "predict g.y from g.x": MSE for vector or scalar y (a scalar y is
left unchanged by g), cross-entropy for a class label. Augerino's width term, which rewards
larger augmentations, is replaced by LieGAN's identity avoidance lambda * |mean cos(g.x, x)|
(group.identity_regulariser) plus LieGAN's channel orthogonality eta * sum_{i<j} |cos(L_i, L_j)|
(which vanishes for c = 1). One Adam optimiser
over predictor and generator, one coefficient draw per sample per step. Gradients of the task
loss flow into the generator, so it is pushed towards transformations under which the task
stays predictable.

Defaults (sources): Adam lr 1e-3 and a predictor MLP on the flattened x with hidden layers
512-512 and ReLU (the project's specification of the comparison; Augerino's own experiments also
train with Adam); lambda_identity 1.0 (the LieGAN paper's published command `main_augerino.py
--lamda 1`); eta_orthogonality 0.1 and init_scale 1.0 (LieGAN's own defaults, so both methods
start from the same generator).
"""
from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from ..data.dataset import Dataset
from ..group import LieGenerator, identity_regulariser, orthogonality_regulariser
from ..nets import flat_dim, mlp
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
    "lr": 1e-3,
    "lambda_identity": 1.0,
    "eta_orthogonality": 0.1,
    "predictor_hidden": [512, 512],
    "init_scale": 1.0,
}


@register("augerino")
class Augerino:
    """Augerino+ (learned Lie-group augmentation + predictor); hyperparameters in DEFAULTS."""

    name = "augerino"

    def skip(self, data: Dataset, space: SearchSpace) -> str | None:
        reason = vector_inputs_only(data, "Augerino+")
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
        out_dim = int(data.y_rep["classes"]) if label else flat_dim(y_all.shape[1:])
        generator = LieGenerator(space, init_scale=float(hp["init_scale"])).to(device)
        predictor = mlp([flat_dim(x_all.shape[1:]), *hp["predictor_hidden"], out_dim]).to(device)
        opt = torch.optim.Adam([*generator.parameters(), *predictor.parameters()], lr=float(hp["lr"]))
        lam, eta = float(hp["lambda_identity"]), float(hp["eta_orthogonality"])
        sample_gen = gen if device.type == "cpu" else None
        ckpt = Checkpointer(
            ctx.workdir, ctx.checkpoint_every, {"generator": generator, "predictor": predictor, "optimiser": opt}, gen
        )
        start_epoch, log = ckpt.restore()

        n = x_all.shape[0]
        bar = Progress(budget.epochs - start_epoch, "augerino", ctx.progress)
        for epoch in range(start_epoch, budget.epochs):
            t0 = time.perf_counter()
            sums = torch.zeros(3, device=device)
            steps = 0
            for step, idx in enumerate(batches(n, budget.batch_size, gen)):
                idx = idx.to(device)
                x, y = x_all[idx], y_all[idx]
                b = x.shape[0]
                g = generator.group_elements(generator.sample_coefficients(b, sample_gen))
                gx = generator.transform(g, x, data.x_rep)
                gy = generator.transform(g, y, data.y_rep)
                pred = predictor(gx.reshape(b, -1))
                task = F.cross_entropy(pred, gy) if label else F.mse_loss(pred, gy.reshape(b, -1))
                reg_id = identity_regulariser(gx, x)
                reg_orth = orthogonality_regulariser(generator.generators())
                loss = task + lam * reg_id + eta * reg_orth
                gnorm = float(generator.generators().detach().norm())
                check_finite("transformed data g.x", gx.detach(), epoch, step, gnorm)
                check_finite("Augerino+ loss", loss.detach(), epoch, step, gnorm)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sums += torch.stack([task.detach(), reg_id.detach(), reg_orth.detach()])
                steps += 1
            means = (sums / steps).tolist()
            log.append({
                "epoch": epoch + 1,
                "loss_task": means[0],
                "regulariser_identity": means[1],
                "regulariser_orthogonality": means[2],
                "generator_norm": float(generator.generators().detach().norm()),
                "seconds": time.perf_counter() - t0,
            })
            bar.update(1, task=means[0], id=means[1])
            ckpt.save_if_due(epoch + 1, budget.epochs, log)
        bar.close()
        blocks = generator.generators().detach().cpu().double().numpy()
        return Discovery(
            generators=space.effective(blocks),
            coefficient_distribution=generator.coefficient_distribution(),
            log=log,
            info={"blocks": blocks, "final_task_loss": log[-1]["loss_task"]},
        )
