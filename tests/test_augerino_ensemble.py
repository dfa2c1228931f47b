"""Augerino+ trains several seeds as one batched ensemble (issue: speed) with the same science.

* each seed of `fit_seeds` equals `fit` of that seed alone, and does not depend on the other seeds;
* a single run equals a plain PyTorch loop of the method (nn.Linear predictor, LieGenerator,
  torch.linalg.matrix_exp, one Adam over all parameters), the implementation before the ensemble;
* resume, the numerical guard naming the seed, and every tensor following the requested device.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from liegan_core.data.dataset import Dataset
from liegan_core.group import LieGenerator, identity_regulariser, orthogonality_regulariser
from liegan_core.methods import Budget, RunContext, SearchSpace
from liegan_core.methods.augerino import Augerino
from liegan_core.nets import mlp
from liegan_core.training import NumericalError, seed_everything

from helpers import vector_pairs

SMALL = {"predictor_hidden": [16], "init_scale": 0.5}
BUDGET = Budget(epochs=3, batch_size=64)


def _label_data(rows: int = 150, seed: int = 0) -> Dataset:
    """Three classes by the tercile of |x|^2 in the plane (an invariant label)."""
    x = np.random.default_rng(seed).normal(size=(rows, 2)).astype(np.float32)
    r2 = (x**2).sum(1)
    y = np.digitize(r2, np.quantile(r2, [1 / 3, 2 / 3])).astype(np.int64)
    return Dataset(x=x, y=y, splits={"train": np.arange(rows)},
                   x_rep={"type": "vector", "n": 2}, y_rep={"type": "label", "classes": 3})


CASES = {
    "vector_blocks": (vector_pairs, SearchSpace(n=8, channels=2, block=2)),
    "label_learnable_sigma": (
        _label_data,
        SearchSpace(n=2, channels=2, coefficients={"distribution": "normal", "sigma": 0.7, "learnable": True}),
    ),
}


def _assert_same(a, b) -> None:
    """Two Discoveries equal to float rounding: generators, coefficient law, every logged loss."""
    np.testing.assert_allclose(a.info["blocks"], b.info["blocks"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(a.generators, b.generators, rtol=1e-6, atol=1e-7)
    assert a.coefficient_distribution.keys() == b.coefficient_distribution.keys()
    if "sigma" in a.coefficient_distribution:
        np.testing.assert_allclose(a.coefficient_distribution["sigma"], b.coefficient_distribution["sigma"], rtol=1e-6)
    assert [r["epoch"] for r in a.log] == [r["epoch"] for r in b.log]
    for key in ("loss_task", "regulariser_identity", "regulariser_orthogonality", "generator_norm"):
        np.testing.assert_allclose([r[key] for r in a.log], [r[key] for r in b.log], rtol=1e-6, atol=1e-7)
    assert a.info["final_task_loss"] == a.log[-1]["loss_task"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_ensemble_seeds_equal_single_runs_and_do_not_depend_on_the_others(case: str) -> None:
    make, space = CASES[case]
    data = make()
    ens = Augerino().fit_seeds(data, space, BUDGET, [0, 1, 2], SMALL, RunContext())
    singles = [Augerino().fit(data, space, BUDGET, s, SMALL, RunContext()) for s in (0, 1, 2)]
    assert len(ens) == 3
    for e, s in zip(ens, singles):
        _assert_same(e, s)
    other = Augerino().fit_seeds(data, space, BUDGET, [5, 2], SMALL, RunContext())
    _assert_same(other[1], ens[2])
    assert not np.allclose(ens[0].info["blocks"], ens[1].info["blocks"])
    with pytest.raises(ValueError):
        Augerino().fit_seeds(data, space, BUDGET, [1, 1], SMALL, RunContext())


def _reference_fit(data: Dataset, space: SearchSpace, budget: Budget, seed: int, hp: dict) -> tuple[np.ndarray, list]:
    """Augerino+ as a plain PyTorch loop, one seed: (final blocks, per-epoch mean task losses)."""
    gen = seed_everything(seed)
    label = data.y_rep["type"] == "label"
    x_all = torch.as_tensor(data.x, dtype=torch.float32)
    y_all = torch.as_tensor(data.y, dtype=torch.long if label else torch.float32)
    out_dim = int(data.y_rep["classes"]) if label else int(np.prod(y_all.shape[1:]))
    generator = LieGenerator(space, init_scale=hp["init_scale"])
    predictor = mlp([int(np.prod(x_all.shape[1:])), *hp["predictor_hidden"], out_dim])
    opt = torch.optim.Adam([*generator.parameters(), *predictor.parameters()], lr=1e-3)
    n = x_all.shape[0]
    losses = []
    for _ in range(budget.epochs):
        perm = torch.randperm(n, generator=gen)
        total, steps = 0.0, 0
        for i0 in range(0, n, budget.batch_size):
            idx = perm[i0 : i0 + budget.batch_size]
            x, y = x_all[idx], y_all[idx]
            b = x.shape[0]
            g = generator.group_elements(generator.sample_coefficients(b, gen))
            gx = generator.transform(g, x, data.x_rep)
            gy = generator.transform(g, y, data.y_rep)
            pred = predictor(gx.reshape(b, -1))
            task = F.cross_entropy(pred, gy) if label else F.mse_loss(pred, gy.reshape(b, -1))
            loss = (task + 1.0 * identity_regulariser(gx, x)
                    + 0.1 * orthogonality_regulariser(generator.generators(), space.n))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(task.detach())
            steps += 1
        losses.append(total / steps)
    return generator.generators().detach().double().numpy(), losses


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_single_run_equals_the_plain_pytorch_loop(case: str) -> None:
    make, space = CASES[case]
    data = make()
    got = Augerino().fit(data, space, BUDGET, 3, SMALL, RunContext())
    blocks, losses = _reference_fit(data, space, BUDGET, 3, SMALL)
    # float rounding only: batched products, the 2 x 2 closed-form exp, per-row means
    np.testing.assert_allclose(got.info["blocks"], blocks, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([r["loss_task"] for r in got.log], losses, rtol=1e-5)


def test_resume_of_an_ensemble_is_identical_and_only_for_the_same_seeds(tmp_path) -> None:
    data, space = vector_pairs(), CASES["vector_blocks"][1]
    full = Augerino().fit_seeds(data, space, BUDGET, [4, 6], SMALL, RunContext())
    ctx = RunContext(workdir=str(tmp_path), checkpoint_every=2)
    Augerino().fit_seeds(data, space, Budget(epochs=2, batch_size=64), [4, 6], SMALL, ctx)
    resumed = Augerino().fit_seeds(data, space, BUDGET, [4, 6], SMALL, ctx)
    for a, b in zip(full, resumed):
        np.testing.assert_array_equal(a.info["blocks"], b.info["blocks"])
        assert [r["loss_task"] for r in a.log] == [r["loss_task"] for r in b.log]
        assert [r["epoch"] for r in b.log] == [1, 2, 3]
    # the folder now holds the finished [4, 6] ensemble: a run of seed 4 alone starts afresh
    alone = Augerino().fit(data, space, BUDGET, 4, SMALL, RunContext(workdir=str(tmp_path)))
    _assert_same(alone, full[0])


def test_non_finite_values_stop_naming_the_seed() -> None:
    data, space = vector_pairs(rows=64), CASES["vector_blocks"][1]
    huge = dict(SMALL, init_scale=1e4)
    with pytest.raises(NumericalError) as err:
        Augerino().fit_seeds(data, space, Budget(epochs=1, batch_size=64), [0, 1], huge, RunContext())
    msg = str(err.value)
    assert "non-finite transformed data g.x (seed 0)" in msg and "epoch 0, step 0" in msg and "generator norm" in msg
    with pytest.raises(NumericalError) as err:
        Augerino().fit(data, space, Budget(epochs=1, batch_size=64), 0, huge, RunContext())
    assert "seed" not in str(err.value) and "transformed data g.x" in str(err.value)


def test_tensors_follow_the_device_and_one_sync_per_step(host_syncs) -> None:
    """With the default device 'meta', a tensor made without the run's device breaks the run; bool() host
    syncs are counted: one per step (the numerical guard)."""
    data, space = vector_pairs(rows=130), CASES["vector_blocks"][1]  # 3 steps per epoch, the last one short
    calls = host_syncs
    with torch.device("meta"):
        out = Augerino().fit_seeds(data, space, Budget(epochs=2, batch_size=64), [0, 1], SMALL, RunContext())
    assert np.isfinite(out[0].info["blocks"]).all() and len(out[1].log) == 2
    assert calls["bool"] == 2 * 3
