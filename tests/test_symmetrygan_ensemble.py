"""SymmetryGAN's seeds as one batched ensemble (symmetrygan.train_symmetrygan) keep the science.

* fit_seeds gives each seed exactly what fit gives it alone (bit-identical on CPU), for one and
  for several channels, including a short last batch; a seed's result does not depend on which
  other seeds share the ensemble;
* the fused step (one discriminator pass for both losses) trains as the plain autograd procedure
  it replaces: per channel its own PairDiscriminator, a generator step, then a discriminator step;
* resume, the numerical guard and device placement behave as for LieGAN's ensembles.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from liegan_core.data.dataset import Dataset
from liegan_core.group import act_blocks, identity_regulariser
from liegan_core.methods import Budget, RunContext, SearchSpace
from liegan_core.methods.symmetrygan import DEFAULTS, LinearElements, SymmetryGAN
from liegan_core.nets import PairDiscriminator
from liegan_core.training import NumericalError, batches, data_tensors, seed_everything

from helpers import vector_pairs

SMALL = {"discriminator_hidden": [16], "lambda_identity": 1.0}
BUDGET = Budget(epochs=3, batch_size=64)
LOG_KEYS = ["epoch", "loss_discriminator", "loss_generator_adversarial", "regulariser_identity", "element_norm",
            "orthogonality_error", "seconds"]


def _space(channels: int) -> SearchSpace:
    return SearchSpace(n=8, channels=channels, block=2)


@pytest.mark.parametrize("channels", [1, 2])
def test_ensemble_equals_single_runs_and_seeds_are_independent(channels: int) -> None:
    data, space = vector_pairs(), _space(channels)
    ens = SymmetryGAN().fit_seeds(data, space, BUDGET, [0, 1, 2], SMALL, RunContext())
    other = SymmetryGAN().fit_seeds(data, space, BUDGET, [5, 2], SMALL, RunContext())
    for seed, e in zip([0, 1, 2], ens):
        single = SymmetryGAN().fit(data, space, BUDGET, seed, SMALL, RunContext())
        # measured bit-identical on CPU (torch 2.13)
        np.testing.assert_array_equal(e.generators, single.generators)
        assert sorted(e.info) == sorted(single.info)
        for key, value in single.info.items():
            np.testing.assert_array_equal(e.info[key], value, err_msg=key)
        assert e.coefficient_distribution == single.coefficient_distribution
        assert [list(r) for r in e.log] == [LOG_KEYS] * BUDGET.epochs == [list(r) for r in single.log]
        for key in LOG_KEYS[:-1]:
            assert [r[key] for r in e.log] == [r[key] for r in single.log], key
    np.testing.assert_array_equal(ens[2].info["element_blocks"], other[1].info["element_blocks"])
    assert not np.allclose(ens[0].info["element_blocks"], ens[1].info["element_blocks"])
    angles = [f"rotation_angle_deg_{i}" for i in range(channels)] if channels > 1 else ["rotation_angle_deg"]
    assert set(angles) <= set(ens[0].info)
    with pytest.raises(ValueError):
        SymmetryGAN().fit_seeds(data, space, BUDGET, [1, 1], SMALL, RunContext())


def _reference_elements(data: Dataset, space: SearchSpace, budget: Budget, seed: int, params: dict) -> np.ndarray:
    """The per-seed autograd procedure the ensemble replaced: c PairDiscriminators; per batch a
    generator step (discriminators frozen), then a discriminator step on the detached M x."""
    hp = {**DEFAULTS, **params}
    gen = seed_everything(seed)
    x_all, y_all, _ = data_tensors(data, torch.device("cpu"))
    c = space.channels
    elements = LinearElements(space, float(hp["init_scale"]))
    discs = nn.ModuleList(
        PairDiscriminator(x_all.shape[1:], y_all.shape[1:], data.y_rep, hp["discriminator_hidden"], hp["embedding_dim"])
        for _ in range(c)
    )
    opt_g = torch.optim.Adam(elements.parameters(), lr=hp["lr_generator"], betas=tuple(hp["betas_generator"]))
    opt_d = torch.optim.Adam(discs.parameters(), lr=hp["lr_discriminator"], betas=tuple(hp["betas_discriminator"]))
    for _ in range(budget.epochs):
        for idx in batches(x_all.shape[0], budget.batch_size, gen):
            x, y = x_all[idx], y_all[idx]
            b = x.shape[0]
            mats = elements()
            discs.requires_grad_(False)
            loss_g, moved = x.new_zeros(()), []
            for i in range(c):
                g = mats[i].expand(b, -1, -1)
                gx, gy = act_blocks(g, x, data.x_rep), act_blocks(g, y, data.y_rep)
                loss_g = loss_g + F.binary_cross_entropy_with_logits(discs[i](gx, gy), torch.ones(b)) \
                    + hp["lambda_identity"] * identity_regulariser(gx, x)
                moved.append((gx.detach(), gy.detach()))
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            discs.requires_grad_(True)
            loss_d = sum(
                F.binary_cross_entropy_with_logits(discs[i](torch.cat([x, gx]), torch.cat([y, gy])),
                                                   torch.cat([torch.ones(b), torch.zeros(b)]))
                for i, (gx, gy) in enumerate(moved)
            )
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
    return elements().detach().double().numpy()


@pytest.mark.parametrize("label", [False, True])
def test_fused_step_trains_as_the_autograd_procedure(label: bool) -> None:
    """Same initialisation, batches, losses and Adam: the learned elements agree to float32 rounding."""
    data, space = vector_pairs(label=label), _space(2)
    params = {**SMALL, "discriminator_hidden": [16, 16]}
    ens = SymmetryGAN().fit_seeds(data, space, BUDGET, [3, 4], params, RunContext())
    for seed, got in zip([3, 4], ens):
        ref = _reference_elements(data, space, BUDGET, seed, params)
        np.testing.assert_allclose(got.info["element_blocks"], ref, rtol=1e-5, atol=1e-6)


def test_resume_of_an_ensemble_is_identical_and_other_seeds_start_afresh(tmp_path) -> None:
    data, space = vector_pairs(), _space(2)
    full = SymmetryGAN().fit_seeds(data, space, BUDGET, [4, 6], SMALL, RunContext())
    ctx = RunContext(workdir=str(tmp_path), checkpoint_every=2)
    SymmetryGAN().fit_seeds(data, space, Budget(epochs=2, batch_size=64), [4, 6], SMALL, ctx)
    assert (tmp_path / "checkpoint.pt").exists()
    resumed = SymmetryGAN().fit_seeds(data, space, BUDGET, [4, 6], SMALL, ctx)
    for a, b in zip(full, resumed):
        np.testing.assert_array_equal(a.info["element_blocks"], b.info["element_blocks"])
        assert [r["epoch"] for r in b.log] == [1, 2, 3]
        assert [r["loss_discriminator"] for r in a.log] == [r["loss_discriminator"] for r in b.log]
    # the folder now holds the finished [4, 6] ensemble: a run of seed 4 alone must not resume it
    alone = SymmetryGAN().fit(data, space, BUDGET, 4, SMALL, RunContext(workdir=str(tmp_path)))
    np.testing.assert_array_equal(alone.info["element_blocks"], full[0].info["element_blocks"])
    assert [r["epoch"] for r in alone.log] == [1, 2, 3]


def test_non_finite_values_stop_naming_the_seed() -> None:
    data, space = vector_pairs(rows=64), _space(1)
    params = {**SMALL, "init_scale": 1e4}  # exp of a huge random matrix: M x overflows at once
    with pytest.raises(NumericalError) as err:
        SymmetryGAN().fit_seeds(data, space, Budget(epochs=1, batch_size=64), [0, 1], params, RunContext())
    msg = str(err.value)
    assert "non-finite transformed data M x (seed 0) at epoch 0, step 0" in msg and "generator norm" in msg
    with pytest.raises(NumericalError) as err:
        SymmetryGAN().fit(data, space, Budget(epochs=1, batch_size=64), 0, params, RunContext())
    assert "seed" not in str(err.value) and "transformed data M x" in str(err.value)


def test_tensors_follow_the_device_and_one_sync_per_step(host_syncs) -> None:
    """With the default device 'meta', a tensor made without the run's device breaks the run, so
    finishing shows every tensor follows ctx.device (the code a CUDA run executes); bool() host
    syncs are counted: one per step, the numerical guard."""
    data, space = vector_pairs(rows=150), _space(2)  # 3 steps per epoch, the last one short
    calls = host_syncs
    with torch.device("meta"):
        out = SymmetryGAN().fit_seeds(data, space, Budget(epochs=2, batch_size=64), [0, 1], SMALL,
                                      RunContext(device="cpu"))
    assert np.isfinite(out[0].info["element_blocks"]).all() and len(out[1].log) == 2
    assert calls["bool"] == 2 * 3
