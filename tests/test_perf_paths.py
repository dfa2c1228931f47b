"""The optimised LieGAN code paths compute the published mathematics (issue: fast training).

* group.expm_2x2 (closed form, analytic gradient) against torch.linalg.matrix_exp;
* StackedDiscriminator.gan_step (one forward over real + fake, shared back-propagation) against
  autograd through PairDiscriminator, the way the published two-step procedure computes it;
* one whole training step of liegan.train_liegan against a plain PyTorch step of the published
  procedure from the same weights, batch and coefficients;
* ensembles: each seed's numbers do not depend on the other seeds, and equal a single run;
* devices: every tensor follows the requested device (checked on the CPU with the default
  device set to 'meta', so a tensor created without an explicit device breaks the run), one
  host sync per step, resume and guards.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from liegan_core.group import (
    LieGenerator, act_blocks, expm, expm_2x2, identity_regulariser, orthogonality_regulariser,
    stacked_identity_regulariser, stacked_orthogonality_regulariser,
)
from liegan_core.methods import Budget, RunContext, SearchSpace
from liegan_core.methods.liegan import DEFAULTS, LieGAN, train_liegan
from liegan_core.nets import PairDiscriminator, StackedDiscriminator
from liegan_core.training import NumericalError, seed_everything

from helpers import vector_pairs

SPACE = SearchSpace(n=8, channels=1, block=2)
SMALL = {"discriminator_hidden": [32, 32]}


def _matrices(dtype: torch.dtype) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    parts = [torch.randn(400, 2, 2, generator=gen, dtype=torch.float64) * s for s in (1e-6, 1e-3, 0.1, 0.5, 1, 2, 4)]
    special = torch.tensor([
        [[0.0, 0.0], [0.0, 0.0]],  # zero
        [[0.0, 1.0], [0.0, 0.0]],  # nilpotent: delta = 0 exactly
        [[0.0, -3.0], [3.0, 0.0]],  # rotation by 3 rad
        [[0.7, 0.0], [0.0, -0.7]],  # hyperbolic
        [[0.0, 1.0], [-1.0, 0.0]],  # delta = -1: the series / closed-form boundary
        [[0.0, 1.0], [1.0, 0.0]],  # delta = +1
        [[1e-4, 2.0], [-3e-9, 5.0]],  # delta ~ 6 with a trace
    ], dtype=torch.float64)
    return torch.cat([*parts, special]).to(dtype)


def test_expm_2x2_matches_matrix_exp_in_float64_values_and_gradients():
    a = _matrices(torch.float64)
    ref = torch.linalg.matrix_exp(a)
    got = expm_2x2(a)
    rel = (got - ref).abs().amax((-1, -2)) / ref.abs().amax((-1, -2))
    assert rel.max() < 1e-12
    a_req = a.clone().requires_grad_()
    weights = torch.randn(a.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    g_got, = torch.autograd.grad((expm_2x2(a_req) * weights).sum(), a_req)
    g_ref, = torch.autograd.grad((torch.linalg.matrix_exp(a_req) * weights).sum(), a_req)
    scale = g_ref.abs().amax((-1, -2), keepdim=True).clamp_min(1e-300)
    assert ((g_got - g_ref).abs() / scale).max() < 1e-10
    small = (a[::97] * 0.3).clone().requires_grad_()
    assert torch.autograd.gradcheck(expm_2x2, (small,))


def test_expm_2x2_float32_is_within_1e6_of_exact():
    """In float32 the closed form is as accurate as matrix_exp (relative 1e-6 against float64)."""
    a64 = _matrices(torch.float64)
    keep = a64.flatten(1).norm(dim=1) <= 2  # where exp's entries are O(1)..O(e^2): float32 resolves 1e-6
    a64 = a64[keep]
    exact = torch.linalg.matrix_exp(a64)
    a32 = a64.float().requires_grad_()
    got = expm_2x2(a32)
    rel = ((got.double() - exact).abs().amax((-1, -2)) / exact.abs().amax((-1, -2))).max()
    rel_me = ((torch.linalg.matrix_exp(a64.float()).double() - exact).abs().amax((-1, -2))
              / exact.abs().amax((-1, -2))).max()
    assert rel < 1e-6 and rel <= 2 * rel_me + 1e-7
    weights = torch.randn(a64.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    g32, = torch.autograd.grad((got * weights.float()).sum(), a32)
    a_ref = a64.clone().requires_grad_()
    g64, = torch.autograd.grad((torch.linalg.matrix_exp(a_ref) * weights).sum(), a_ref)
    assert ((g32.double() - g64).abs() / g64.abs().amax()).max() < 1e-6


def test_expm_dispatches_by_block_size():
    a3 = torch.randn(5, 3, 3, dtype=torch.float64)
    assert torch.equal(expm(a3), torch.linalg.matrix_exp(a3))
    a2 = torch.randn(5, 2, 2, dtype=torch.float64)
    assert torch.allclose(expm(a2), torch.linalg.matrix_exp(a2), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError):
        expm_2x2(a3)


def _reference_discriminator_grads(disc: PairDiscriminator, x, y, gx, gy):
    """The published procedure with autograd: generator loss through D(g.x, g.y); D loss on [real; fake]."""
    gx, gy = gx.clone().requires_grad_(), gy.clone().requires_grad_() if gy.is_floating_point() else gy
    b = x.shape[0]
    fake = disc(gx, gy)
    adv = F.binary_cross_entropy_with_logits(fake, torch.ones(b, dtype=fake.dtype))
    inputs = [gx] + ([gy] if gy.requires_grad else [])
    d_inputs = torch.autograd.grad(adv, inputs)
    logits = disc(torch.cat([x, gx.detach()]), torch.cat([y, gy.detach()]))
    loss_d = F.binary_cross_entropy_with_logits(logits, torch.cat([torch.ones(b), torch.zeros(b)]).to(logits.dtype))
    d_params = torch.autograd.grad(loss_d, list(disc.parameters()))
    return loss_d, adv, d_params, d_inputs


@pytest.mark.parametrize("kind", ["vector", "scalar", "label"])
@pytest.mark.parametrize("hidden", [[24, 16], [12], []])
def test_gan_step_equals_autograd_of_the_published_two_steps(kind, hidden):
    torch.manual_seed(0)
    s, b = 3, 10
    x = torch.randn(s, b, 2, 4, dtype=torch.float64)
    gx = torch.randn(s, b, 2, 4, dtype=torch.float64)
    if kind == "vector":
        rep, y = {"type": "vector", "n": 4}, torch.randn(s, b, 1, 4, dtype=torch.float64)
        gy = torch.randn(s, b, 1, 4, dtype=torch.float64)
    elif kind == "scalar":
        rep, y = {"type": "scalar"}, torch.randn(s, b, 3, dtype=torch.float64)
        gy = y
    else:
        rep, y = {"type": "label", "classes": 5}, torch.randint(0, 5, (s, b))
        gy = y
    discs = [PairDiscriminator(x.shape[2:], y.shape[2:], rep, hidden, 6).double() for _ in range(s)]
    stacked = StackedDiscriminator(discs)
    targets = torch.cat([torch.ones(s, b), torch.zeros(s, b)], 1).double()
    loss_d, adv, grads, d_fake = stacked.gan_step(x, y, gx, gy, targets)
    names = [n for n, _ in stacked.named_parameters()]
    for k, disc in enumerate(discs):
        ref_d, ref_adv, ref_params, ref_inputs = _reference_discriminator_grads(disc, x[k], y[k], gx[k], gy[k])
        assert torch.allclose(loss_d[k], ref_d, rtol=1e-12) and torch.allclose(adv[k], ref_adv, rtol=1e-12)
        # the stacked parameters, in order: [embed], weights..., biases...; reference: per Linear (w, b), [embed] first
        ref = dict(zip([n for n, _ in disc.named_parameters()], ref_params))
        lin = [i for i, m in enumerate(disc.net) if isinstance(m, torch.nn.Linear)]
        for name, grad in zip(names, grads):
            if name == "embed":
                expect = ref["embed.weight"]
            elif name.startswith("weights."):
                j = int(name.split(".")[1])
                expect = ref[f"net.{lin[j]}.weight"]
                expect = expect if stacked.row_layer[j] else expect.T
            else:
                expect = ref[f"net.{lin[int(name.split('.')[1])]}.bias"].reshape(1, -1)
            torch.testing.assert_close(grad[k], expect, rtol=1e-10, atol=1e-13)
        nx = x[0, 0].numel()
        torch.testing.assert_close(d_fake[k, :, :nx].reshape(gx[k].shape), ref_inputs[0], rtol=1e-10, atol=1e-13)
        if kind == "vector":
            torch.testing.assert_close(d_fake[k, :, nx:].reshape(gy[k].shape), ref_inputs[1], rtol=1e-10, atol=1e-13)
        torch.testing.assert_close(stacked(x, y)[k], disc(x[k], y[k]), rtol=1e-12, atol=1e-13)


def test_stacked_regularisers_equal_the_published_ones_per_seed():
    torch.manual_seed(0)
    gens = torch.randn(4, 3, 2, 2)
    gx, x = torch.randn(4, 7, 2, 2), torch.randn(4, 7, 2, 2)
    orth, ident = stacked_orthogonality_regulariser(gens, 2), stacked_identity_regulariser(gx, x)
    for k in range(4):
        torch.testing.assert_close(orth[k], orthogonality_regulariser(gens[k], 2))
        torch.testing.assert_close(ident[k], identity_regulariser(gx[k], x[k]))
    assert torch.equal(stacked_orthogonality_regulariser(gens[:, :1], 2), torch.zeros(4))


def _published_step(generator, disc, opt_g, opt_d, x, y, w, hp):
    """One batch of the published procedure, plain PyTorch: generator step, then discriminator step."""
    b = x.shape[0]
    algebra = torch.einsum("bc,cij->bij", w, generator.generators())
    g = torch.linalg.matrix_exp(algebra)
    gx, gy = act_blocks(g, x, {"type": "vector"}), act_blocks(g, y, {"type": "vector"})
    disc.requires_grad_(False)
    adv = F.binary_cross_entropy_with_logits(disc(gx, gy), torch.ones(b))
    loss_g = adv + hp["lambda_identity"] * identity_regulariser(gx, x) \
        + hp["eta_orthogonality"] * orthogonality_regulariser(generator.generators(), SPACE.n)
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    disc.requires_grad_(True)
    logits = disc(torch.cat([x, gx.detach()]), torch.cat([y, gy.detach()]))
    loss_d = F.binary_cross_entropy_with_logits(logits, torch.cat([torch.ones(b), torch.zeros(b)]))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()


def test_one_training_step_equals_the_published_procedure():
    """From the same initial weights, batch and coefficients, one step of train_liegan moves the
    generator and discriminator as the plain PyTorch published step does (float32 rounding apart)."""
    data = vector_pairs(rows=64)
    hp = {**DEFAULTS, **SMALL}
    out = train_liegan(data, SPACE, Budget(epochs=1, batch_size=64), [7], dict(SMALL, fused_adam=False), RunContext())[0]
    # the reference: same initialisation order and the same per-epoch draws (order, then coefficients)
    gen = seed_everything(7)
    generator = LieGenerator(SPACE, init_scale=1.0)
    disc = PairDiscriminator((1, 8), (1, 8), data.y_rep, hp["discriminator_hidden"], 32)
    perm = torch.randperm(64, generator=gen)
    w = torch.randn(64, 1, generator=gen)
    opt_g = torch.optim.Adam(generator.parameters(), lr=hp["lr_generator"], betas=tuple(hp["betas_generator"]))
    opt_d = torch.optim.Adam(disc.parameters(), lr=hp["lr_discriminator"], betas=tuple(hp["betas_discriminator"]))
    x, y = torch.as_tensor(data.x)[perm], torch.as_tensor(data.y)[perm]
    _published_step(generator, disc, opt_g, opt_d, x, y, w, hp)
    np.testing.assert_allclose(out.info["blocks"], generator.generators().detach().double().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_one_step_with_the_fused_adam_matches_the_default_adam():
    data = vector_pairs(rows=64)
    a = train_liegan(data, SPACE, Budget(epochs=2, batch_size=64), [3], dict(SMALL, fused_adam=True), RunContext())[0]
    b = train_liegan(data, SPACE, Budget(epochs=2, batch_size=64), [3], dict(SMALL, fused_adam=False), RunContext())[0]
    np.testing.assert_allclose(a.info["blocks"], b.info["blocks"], rtol=1e-5, atol=1e-6)


def test_ensemble_seeds_are_independent_and_equal_single_runs():
    data = vector_pairs(rows=150)
    budget = Budget(epochs=2, batch_size=64)
    ens = LieGAN().fit_seeds(data, SPACE, budget, [0, 1, 2], SMALL, RunContext())
    other = LieGAN().fit_seeds(data, SPACE, budget, [5, 2], SMALL, RunContext())
    singles = [LieGAN().fit(data, SPACE, budget, s, SMALL, RunContext()) for s in (0, 1, 2)]
    for e, s in zip(ens, singles):
        # measured bit-identical on CPU (torch 2.13): every kernel's per-seed result is shape-independent
        np.testing.assert_array_equal(e.info["blocks"], s.info["blocks"])
        assert [r["loss_discriminator"] for r in e.log] == [r["loss_discriminator"] for r in s.log]
    np.testing.assert_array_equal(ens[2].info["blocks"], other[1].info["blocks"])
    assert not np.allclose(ens[0].info["blocks"], ens[1].info["blocks"])
    with pytest.raises(ValueError):
        LieGAN().fit_seeds(data, SPACE, budget, [1, 1], SMALL, RunContext())


def test_tensors_follow_the_device_and_one_sync_per_step(host_syncs):
    """With the default device set to 'meta', any tensor made without the run's device would be a
    meta tensor and break the run: finishing proves every tensor follows ctx.device, the same code
    a CUDA run executes. Host syncs via bool() are counted: one per step (the numerical guard)."""
    data = vector_pairs(rows=130)  # 3 steps per epoch, the last one short
    calls = host_syncs
    with torch.device("meta"):
        out = train_liegan(data, SPACE, Budget(epochs=2, batch_size=64), [0, 1], SMALL, RunContext(device="cpu"))
    assert np.isfinite(out[0].info["blocks"]).all() and len(out[1].log) == 2
    assert calls["bool"] == 2 * 3


def test_resume_is_identical_for_single_runs_and_ensembles(tmp_path):
    data = vector_pairs(rows=150)
    for seeds in ([4], [4, 6]):
        full = train_liegan(data, SPACE, Budget(epochs=3, batch_size=64), seeds, SMALL, RunContext())
        work = tmp_path / f"run{len(seeds)}"
        work.mkdir()
        ctx = RunContext(workdir=str(work), checkpoint_every=2)
        train_liegan(data, SPACE, Budget(epochs=2, batch_size=64), seeds, SMALL, ctx)
        resumed = train_liegan(data, SPACE, Budget(epochs=3, batch_size=64), seeds, SMALL, ctx)
        for a, b in zip(full, resumed):
            np.testing.assert_array_equal(a.info["blocks"], b.info["blocks"])
            assert [r["epoch"] for r in b.log] == [1, 2, 3]
            assert [r["loss_discriminator"] for r in a.log] == [r["loss_discriminator"] for r in b.log]
    # a checkpoint of other seeds is not resumed
    other = train_liegan(data, SPACE, Budget(epochs=3, batch_size=64), [4], SMALL, RunContext(workdir=str(work)))
    np.testing.assert_array_equal(other[0].info["blocks"], full[0].info["blocks"])


def test_non_finite_values_stop_with_quantity_epoch_step_and_norm():
    data = vector_pairs(rows=64)
    with pytest.raises(NumericalError) as err:
        train_liegan(data, SPACE, Budget(epochs=1, batch_size=64), [0, 1], dict(SMALL, init_scale=1e4), RunContext())
    msg = str(err.value)
    assert "non-finite" in msg and "(seed 0)" in msg and "epoch 0, step 0" in msg and "generator norm" in msg
    with pytest.raises(NumericalError) as err:
        LieGAN().fit(data, SPACE, Budget(epochs=1, batch_size=64), 0, dict(SMALL, init_scale=1e4), RunContext())
    assert "seed" not in str(err.value) and "transformed data g.x" in str(err.value)


def test_flop_counts_of_the_paper_two_body_step():
    from liegan_core.report.perf import flops_per_step

    sizes = [16, 512, 512, 1]  # discriminator on (x, y) in R^8 x R^8
    fwd = 2 * 64 * (16 * 512 + 512 * 512 + 512)
    assert flops_per_step("liegan", sizes, 64) == 8 * fwd  # 2 F(B) + 3 F(2B)
    executed = flops_per_step("liegan", sizes, 64, implementation="executed")
    assert executed == 4 * fwd + 2 * 128 * 512 * 512 + 2 * 64 * 16 * 512
    assert 0.74 < executed / (8 * fwd) < 0.76
    assert flops_per_step("symmetrygan", sizes, 64, channels=3) == 3 * 8 * fwd
    assert flops_per_step("symmetrygan", sizes, 64, channels=3, implementation="executed") == 3 * executed
    assert flops_per_step("oracle", sizes, 64) == 0


def test_snakemake_benchmark_files_are_aggregated(tmp_path):
    from liegan_core.report.perf import aggregate_jobs

    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    files = {"discover/two_body/liegan/seed3.tsv": header + "40.0\t0:00:40\t300.5\t800\t200\t210\t0\t1\t190\t76.0\n",
             "generate/two_body.tsv": header + "10.0\t0:00:10\tNA\tNA\tNA\tNA\tNA\tNA\tNA\tNA\n",
             "discover/two_body/oracle/seed0.tsv": header + "2.0\t0:00:02\t100\t200\t50\t60\t0\t0\t50\t1.0\n"
                                                   "3.0\t0:00:03\t110\t200\t50\t60\t0\t0\t50\t1.5\n"}
    for rel, text in files.items():
        (tmp_path / "bench" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "bench" / rel).write_text(text)
    jobs = aggregate_jobs(tmp_path / "bench", tmp_path / "out")
    assert list(jobs.job) == ["two_body/liegan/seed3", "two_body", "two_body/oracle/seed0", "two_body/oracle/seed0"]
    assert list(jobs.rule) == ["discover", "generate", "discover", "discover"]
    top = jobs.iloc[0]
    assert (top.rule, top.task, top.method, top.seed) == ("discover", "two_body", "liegan", 3)
    assert top.cores_used == pytest.approx(1.9) and top.max_rss_mb == pytest.approx(300.5)
    assert np.isnan(jobs.iloc[1].max_rss_mb) and sorted(jobs[jobs.method == "oracle"].repeat) == [0, 1]
    md = (tmp_path / "out" / "jobs.md").read_text()
    assert "| discover | 3 | 45.0 | 82 % |" in md
    assert (tmp_path / "out" / "jobs.csv").read_text().startswith("rule,job,task,method,seed")
