"""The plain PyTorch LieGAN loop this project used before the performance work (the yardstick).

One nn.Module generator and discriminator, torch.linalg.matrix_exp, the published two steps per
batch (a generator step through the discriminator, then a discriminator step on [real; fake]),
the default (foreach) Adam and numerical checks that each read a value back (3 checks and one
generator norm per step). Same losses, optimiser settings, data order and coefficient stream as
liegan.train_liegan, so the two differ only in how the work is done. Used by run.py to measure
the speed-up on the same machine in the same run; not part of the package.
"""
from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from liegan_core.data.dataset import Dataset
from liegan_core.group import LieGenerator, identity_regulariser, orthogonality_regulariser, resolve_init_scale
from liegan_core.methods.base import Budget, Discovery, SearchSpace
from liegan_core.methods.liegan import DEFAULTS
from liegan_core.nets import PairDiscriminator
from liegan_core.training import check_finite, seed_everything


def fit_reference(data: Dataset, space: SearchSpace, budget: Budget, seed: int, params: dict[str, Any]) -> Discovery:
    hp = {**DEFAULTS, **params}
    gen = seed_everything(seed)
    x_all = torch.as_tensor(data.x, dtype=torch.float32)
    label = data.y_rep["type"] == "label"
    y_all = torch.as_tensor(data.y, dtype=torch.long if label else torch.float32)
    generator = LieGenerator(space, init_scale=resolve_init_scale(hp["init_scale"], space, "liegan"))
    disc = PairDiscriminator(x_all.shape[1:], y_all.shape[1:], data.y_rep, hp["discriminator_hidden"],
                             int(hp["embedding_dim"]))
    opt_g = torch.optim.Adam(generator.parameters(), lr=hp["lr_generator"], betas=tuple(hp["betas_generator"]))
    opt_d = torch.optim.Adam(disc.parameters(), lr=hp["lr_discriminator"], betas=tuple(hp["betas_discriminator"]))
    lam, eta = float(hp["lambda_identity"]), float(hp["eta_orthogonality"])
    n, bs = x_all.shape[0], budget.batch_size
    ones, zeros = torch.ones(bs), torch.zeros(bs)
    log = []
    for epoch in range(budget.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        raw = torch.randn(n, space.channels, generator=gen)
        for step, i0 in enumerate(range(0, n, bs)):
            idx = perm[i0 : i0 + bs]
            x, y = x_all[idx], y_all[idx]
            b = x.shape[0]
            w = raw[i0 : i0 + bs] * generator.log_sigma.exp()
            g = torch.linalg.matrix_exp(torch.einsum("bc,cij->bij", w, generator.generators()))
            gx = generator.transform(g, x, data.x_rep)
            gy = generator.transform(g, y, data.y_rep)
            disc.requires_grad_(False)
            adv = F.binary_cross_entropy_with_logits(disc(gx, gy), ones[:b])
            reg_id = identity_regulariser(gx, x)
            reg_orth = orthogonality_regulariser(generator.generators(), space.n)
            loss_g = adv + lam * reg_id + eta * reg_orth
            gnorm = float(generator.generators().detach().norm())
            check_finite("transformed data g.x", gx.detach(), epoch, step, gnorm)
            check_finite("generator loss", loss_g.detach(), epoch, step, gnorm)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            disc.requires_grad_(True)
            logits = disc(torch.cat([x, gx.detach()]), torch.cat([y, gy.detach()]))
            loss_d = F.binary_cross_entropy_with_logits(logits, torch.cat([ones[:b], zeros[:b]]))
            check_finite("discriminator loss", loss_d.detach(), epoch, step, gnorm)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        log.append({"epoch": epoch + 1, "seconds": time.perf_counter() - t0})
    blocks = generator.generators().detach().double().numpy()
    return Discovery(generators=space.effective(blocks), log=log, info={"blocks": blocks})
