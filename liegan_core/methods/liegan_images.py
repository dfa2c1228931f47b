"""LieGAN on images (the paper's rotated-MNIST experiment): affine generators, conv discriminator.

Same method as `liegan.train_liegan` - g = exp(sum_i w_i L_i), one generator step then one
discriminator step per batch, the non-saturating BCE losses, lambda * identity avoidance plus
eta * channel orthogonality - with the three changes the published image experiment makes:

* the group acts on the image plane: L_i are 3 x 3 affine generators on homogeneous coordinates
  and g . I is resampled with grid sampling (group.act -> data.digits.warp_images);
* the discriminator is a small CNN with a learned label embedding (nets.ConvPairDiscriminator);
* identity avoidance compares the images' 2-D Fourier magnitudes instead of raw pixels
  (`identity_regulariser: fourier`, group.fourier_identity_regulariser), so shifting the picture
  does not count as moving away from the identity.

Images are few and a CNN step costs milliseconds, so this is a plain autograd loop for one seed
(no stacked ensemble). Randomness follows the vector path: parameters initialised on the CPU
after training.seed_everything(seed), then data order and coefficients from that seed's CPU
generator, so a seed gives the same numbers on every device count and resumes bit-identically.
"""
from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from ..data.dataset import Dataset
from ..errors import UserError
from ..group import (
    LieGenerator, act, expm, fourier_identity_regulariser, identity_regulariser, orthogonality_regulariser,
    resolve_init_scale,
)
from ..nets import ConvPairDiscriminator
from ..training import Checkpointer, Progress, batches, check_finite, data_tensors, resolve_device, seed_everything
from .base import Budget, Discovery, RunContext, SearchSpace

IDENTITY_REGULARISERS = {"cosine": identity_regulariser, "fourier": fourier_identity_regulariser}


def image_settings(hp: dict[str, Any]) -> tuple[str, str]:
    """(discriminator, identity regulariser) for image data, 'auto' resolved; UserError for others."""
    disc = "conv" if hp["discriminator"] == "auto" else hp["discriminator"]
    reg = "fourier" if hp["identity_regulariser"] == "auto" else hp["identity_regulariser"]
    if disc != "conv":
        raise UserError(f"methods.liegan.discriminator: images need 'conv' (or 'auto'), got {disc!r}")
    if reg not in IDENTITY_REGULARISERS:
        raise UserError(
            f"methods.liegan.identity_regulariser: expected one of {sorted(IDENTITY_REGULARISERS)} or 'auto', got {reg!r}"
        )
    return disc, reg


def train_liegan_images(
    data: Dataset, space: SearchSpace, budget: Budget, seed: int, hp: dict[str, Any], ctx: RunContext,
) -> Discovery:
    """Train LieGAN for one seed on image data (x_rep type 'grid'); hp holds every hyperparameter."""
    from .liegan import StackedGenerator  # the coefficient law and CPU draws, shared with the vector path

    _, reg_name = image_settings(hp)
    if space.matrix_size != 3 or space.copies != 1:
        raise UserError(f"search_space: images need 3 x 3 affine generators (n: 3, no block), got n={space.n}")
    device = resolve_device(ctx.device)
    x_all, y_all, _ = data_tensors(data, device)
    with torch.device("cpu"):
        gen = seed_everything(seed)
        lie = LieGenerator(space, init_scale=resolve_init_scale(hp["init_scale"], space, "liegan"))
        disc = ConvPairDiscriminator(x_all.shape[1:], data.y_rep, int(hp["embedding_dim"]))
    generator = StackedGenerator([lie]).to(device)
    disc = disc.to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=hp["lr_generator"], betas=tuple(hp["betas_generator"]))
    opt_d = torch.optim.Adam(disc.parameters(), lr=hp["lr_discriminator"], betas=tuple(hp["betas_discriminator"]))
    lam, eta = float(hp["lambda_identity"]), float(hp["eta_orthogonality"])
    regulariser = IDENTITY_REGULARISERS[reg_name]
    max_norm = hp["max_exponent_norm"]
    ckpt = Checkpointer(
        ctx.workdir, ctx.checkpoint_every,
        {"generator": generator, "discriminator": disc, "opt_generator": opt_g, "opt_discriminator": opt_d}, gen,
    )
    start_epoch, log = ckpt.restore()
    clip_events = int(log[-1]["clip_events"]) if log else 0
    n = x_all.shape[0]
    bar = Progress(budget.epochs - start_epoch, "liegan (images)", ctx.progress)
    for epoch in range(start_epoch, budget.epochs):
        t0 = time.perf_counter()
        sums = torch.zeros(4, device=device)
        steps = 0
        for step, idx in enumerate(batches(n, budget.batch_size, gen)):
            raw = generator.draw(len(idx), gen).to(device).unsqueeze(0)
            idx = idx.to(device)
            x, y = x_all[idx], y_all[idx]
            b = x.shape[0]
            lie_mats = generator.generators()[0]
            norm = float(lie_mats.detach().norm())
            algebra = torch.einsum("bc,cij->bij", generator.coefficients(raw)[0], lie_mats)
            if max_norm is not None:
                norms = algebra.flatten(1).norm(dim=1).clamp_min(1e-12)
                over = norms > max_norm
                clip_events += int(over.sum())
                algebra = algebra * torch.where(over, max_norm / norms, torch.ones_like(norms))[:, None, None]
            gx = act(expm(algebra), x, data.x_rep)
            check_finite("transformed images g.x", gx.detach(), epoch, step, norm)
            real, fake = torch.ones(b, device=device), torch.zeros(b, device=device)
            disc.requires_grad_(False)
            adv = F.binary_cross_entropy_with_logits(disc(gx, y), real)
            reg_id = regulariser(gx, x)
            reg_orth = orthogonality_regulariser(lie_mats, space.n)
            loss_g = adv + lam * reg_id + eta * reg_orth
            check_finite("generator loss", loss_g.detach(), epoch, step, norm)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            disc.requires_grad_(True)
            logits = disc(torch.cat([x, gx.detach()]), torch.cat([y, y]))
            loss_d = F.binary_cross_entropy_with_logits(logits, torch.cat([real, fake]))
            check_finite("discriminator loss", loss_d.detach(), epoch, step, norm)
            opt_g.step()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            sums += torch.stack([loss_d.detach(), adv.detach(), reg_id.detach(), reg_orth.detach()])
            steps += 1
        means = (sums / steps).tolist()
        log.append({
            "epoch": epoch + 1, "loss_discriminator": means[0], "loss_generator_adversarial": means[1],
            "regulariser_identity": means[2], "regulariser_orthogonality": means[3],
            "generator_norm": float(generator.generators().detach().norm()), "clip_events": clip_events,
            "seconds": time.perf_counter() - t0,
        })
        bar.update(1, d=means[0], g=means[1], id=means[2])
        ckpt.save_if_due(epoch + 1, budget.epochs, log)
    bar.close()
    blocks = generator.generators()[0].detach().cpu().double().numpy()
    return Discovery(
        generators=space.effective(blocks),
        coefficient_distribution=generator.coefficient_distribution(0),
        log=log,
        info={"clip_events": clip_events, "blocks": blocks},
    )
