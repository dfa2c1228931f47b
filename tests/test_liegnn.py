"""LieGNN and the top-tagging downstream: invariance per metric, metrics from generators, ROC/AUC and
background rejection, and an end-to-end run on synthetic 'jets' (plumbing only; no Pythia)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from liegan_core.data.dataset import Dataset
from liegan_core.downstream_jets import (
    DEFAULT_SETTINGS,
    REJECTION,
    accuracy,
    add_parser,
    auc,
    background_rejection,
    jet_arrays,
    metric_for,
    roc_curve,
    run_jets_downstream,
    train_classifier,
)
from liegan_core.errors import UserError
from liegan_core.lie import abs_cosine, expm, invariant_metric, minkowski_metric, so13_basis, so_basis
from liegan_core.methods import RunContext
from liegan_core.models.liegnn import LieGNN, ParticleFlowBaseline, normalised_metric
from liegan_core.report.jets import report_jets

torch.set_num_threads(1)

# (metric, algebra whose group preserves it)
SYMMETRIES = {
    "minkowski-so13": (minkowski_metric(), so13_basis()),
    "euclidean-so4": (np.eye(4), so_basis(4)),
}


def fake_jets(n_jets: int, n_slots: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Massless 'constituents' (E, px, py, pz) around a random axis, zero-padded: [N, n_slots, 4], counts [N],
    labels [N]. Signal jets are wider (two sub-clusters); units of ~GeV/100 before any scaling."""
    labels = np.arange(n_jets) % 2
    counts = rng.integers(n_slots // 2, n_slots + 1, n_jets)
    pt = rng.exponential(0.3, (n_jets, n_slots)) + 0.01
    spread = np.where(labels[:, None] == 1, 0.25, 0.06)
    eta = rng.normal(0.0, 1.0, (n_jets, 1)) + rng.normal(0.0, 1.0, (n_jets, n_slots)) * spread
    phi = rng.uniform(-np.pi, np.pi, (n_jets, 1)) + rng.normal(0.0, 1.0, (n_jets, n_slots)) * spread
    p4 = np.stack([pt * np.cosh(eta), pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=-1)
    p4 *= (np.arange(n_slots)[None, :] < counts[:, None])[..., None]
    return p4, counts, labels


def random_element(basis: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """exp(sum_i w_i L_i) with w ~ N(0, scale^2): small enough boosts (rapidity ~ scale) to stay well conditioned."""
    return expm(np.tensordot(rng.normal(0.0, scale, basis.shape[0]), basis, axes=1))


def relative_change(net: torch.nn.Module, x: np.ndarray, mask: np.ndarray, g: np.ndarray) -> float:
    """max |f(g x) - f(x)| / max |f(x)| in float64, eval mode."""
    net = net.double().eval()
    m = torch.as_tensor(mask)
    with torch.no_grad():
        out = net(torch.as_tensor(x), m)
        moved = net(torch.as_tensor(x @ g.T), m)
    return float((moved - out).abs().max() / out.abs().max())


@pytest.fixture(scope="module")
def jets() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    p4, counts, _ = fake_jets(6, 10, rng)
    return p4, np.arange(10)[None, :] < counts[:, None]


@pytest.mark.parametrize("name", list(SYMMETRIES))
def test_liegnn_invariant_under_the_metrics_group(name: str, jets: tuple[np.ndarray, np.ndarray]) -> None:
    metric, basis = SYMMETRIES[name]
    torch.manual_seed(0)
    net = LieGNN(metric, hidden=12, layers=3, c_weight=5e-3)
    net.calibrate(torch.as_tensor(jets[0]), torch.as_tensor(jets[1]))
    rng = np.random.default_rng(1)
    for _ in range(3):
        assert relative_change(net, *jets, random_element(basis, 0.3, rng)) < 1e-5


@pytest.mark.parametrize("name", list(SYMMETRIES))
def test_baseline_and_wrong_metric_are_not_invariant(name: str, jets: tuple[np.ndarray, np.ndarray]) -> None:
    """The check can fail: the baseline is not invariant, nor is LieGNN under the other metric's group."""
    metric, basis = SYMMETRIES[name]
    other = next(m for k, (m, _) in SYMMETRIES.items() if k != name)
    g = random_element(basis, 0.3, np.random.default_rng(2))
    torch.manual_seed(0)
    assert relative_change(ParticleFlowBaseline(hidden=12, layers=2), *jets, g) > 1e-3
    assert relative_change(LieGNN(other, hidden=12, layers=2), *jets, g) > 1e-3


def test_padding_is_ignored(jets: tuple[np.ndarray, np.ndarray]) -> None:
    """Whatever sits in masked slots, and however many there are, the output is the same."""
    x, mask = jets
    torch.manual_seed(0)
    net = LieGNN(minkowski_metric(), hidden=8, layers=2).double().eval()
    junk = np.where(mask[..., None], x, 5.0)
    wider = np.concatenate([x, np.ones((x.shape[0], 3, 4))], axis=1)
    wider_mask = np.concatenate([mask, np.zeros((x.shape[0], 3), bool)], axis=1)
    with torch.no_grad():
        ref = net(torch.as_tensor(x), torch.as_tensor(mask))
        torch.testing.assert_close(net(torch.as_tensor(junk), torch.as_tensor(mask)), ref)
        torch.testing.assert_close(net(torch.as_tensor(wider), torch.as_tensor(wider_mask)), ref)


def test_metric_from_lorentz_generators_is_minkowski() -> None:
    j = invariant_metric(so13_basis())
    assert abs_cosine(j, minkowski_metric()) > 0.999
    rng = np.random.default_rng(3)
    mixed = np.einsum("ck,kij->cij", rng.normal(size=(7, 6)), so13_basis())  # 7 channels spanning so(1,3)
    assert abs_cosine(invariant_metric(mixed), minkowski_metric()) > 0.999
    torch.testing.assert_close(normalised_metric(j), torch.as_tensor(minkowski_metric()))


def test_metric_from_rotation_generators_is_identity() -> None:
    j = invariant_metric(so_basis(4))
    torch.testing.assert_close(normalised_metric(j), torch.eye(4, dtype=torch.float64))


def test_metric_for_sources(tmp_path: Path) -> None:
    assert np.array_equal(metric_for("true", None), minkowski_metric())
    assert np.array_equal(metric_for("wrong", None), np.eye(4))
    with pytest.raises(UserError, match="generators"):
        metric_for("liegan", None)
    with pytest.raises(UserError, match="not 'none'"):
        metric_for("none", None)
    np.savez(tmp_path / "bad.npz", generators=np.zeros((2, 3, 3)))
    with pytest.raises(UserError, match=r"\[c, 4, 4\]"):
        metric_for("liegan", tmp_path / "bad.npz")


def test_auc_known_cases() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    assert auc(scores, labels) == 1.0
    assert auc(-scores, labels) == 0.0
    assert auc(np.full(6, 0.5), labels) == 0.5  # all tied: half credit
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    # one tie between classes: pairs (s, b) = (.5,.5) tie, (.5,.2), (.7,.5), (.7,.2) -> 3.5 / 4
    assert auc(np.array([0.5, 0.7, 0.5, 0.2]), np.array([1, 1, 0, 0])) == 0.875
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 20000)
    assert abs(auc(rng.random(20000), labels) - 0.5) < 0.02
    # against the pairwise definition, with many ties
    scores, labels = rng.integers(0, 5, 300).astype(float), rng.integers(0, 2, 300)
    s, b = scores[labels == 1], scores[labels == 0]
    pairwise = ((s[:, None] > b[None, :]).sum() + 0.5 * (s[:, None] == b[None, :]).sum()) / (s.size * b.size)
    assert auc(scores, labels) == pytest.approx(pairwise, abs=1e-12)


def test_roc_curve_shape_and_errors() -> None:
    fpr, tpr, thr = roc_curve(np.array([0.9, 0.9, 0.1, 0.5]), np.array([1, 0, 0, 1]))
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0) and np.all(np.diff(thr) < 0)
    assert len(fpr) == 4  # +inf and the 3 distinct scores
    with pytest.raises(ValueError, match="both classes"):
        roc_curve(np.array([0.1, 0.2]), np.array([1, 1]))


def test_background_rejection_constructed() -> None:
    signal = np.arange(1.0, 11.0)  # 30% of 10 signal events: the cut is score >= 8
    background = np.r_[8.5, 8.0, 7.9, np.zeros(17)]  # 2 of 20 background events pass
    scores = np.r_[signal, background]
    labels = np.r_[np.ones(10), np.zeros(20)]
    assert background_rejection(scores, labels) == (10.0, False)
    # nothing passes: the rejection is only bounded below by N_B
    assert background_rejection(np.r_[signal, np.zeros(20)], labels) == (20.0, True)
    assert accuracy(np.array([0.9, 0.2, 0.6, 0.4]), np.array([1, 0, 0, 1])) == 0.5


def synthetic_dataset(path: Path, n_jets: int = 200, n_slots: int = 12) -> None:
    """A top_tagging-shaped Dataset file from fake_jets: x = 2 leading constituents, extras as jets.py writes."""
    rng = np.random.default_rng(5)
    p4, counts, labels = fake_jets(n_jets, n_slots, rng)
    p4 = (p4 * 100.0).astype(np.float32)  # GeV
    order = rng.permutation(n_jets)
    splits = {"train": order[:120], "val": order[120:160], "test": order[160:]}
    Dataset(
        x=p4[:, :2].astype(np.float64), y=labels.astype(np.int64), splits={k: np.sort(v) for k, v in splits.items()},
        x_rep={"type": "vector", "n": 4}, y_rep={"type": "label", "classes": 2}, true_algebra=so13_basis(),
        meta={"generator": "synthetic jets (test)"},
        extras={"constituents": p4, "n_constituents": counts.astype(np.int32)},
    ).save(path)


TINY = {"n_particles": 8, "hidden": 8, "layers": 1, "epochs": 2, "batch_size": 32, "patience": 1}


def tiny_config() -> dict:
    return {"task": "top_tagging", "downstream": {"settings": {"quick": TINY}}, "_profile": {"profile": "quick"}}


@pytest.fixture(scope="module")
def dataset_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jets") / "top_tagging.npz"
    synthetic_dataset(path)
    return path


def test_end_to_end_learned_metric(dataset_path: Path, tmp_path: Path) -> None:
    gens = tmp_path / "generators.npz"
    np.savez(gens, generators=so13_basis()[[0, 3, 5]] + 1e-3)
    out = tmp_path / "run"
    res = run_jets_downstream(tiny_config(), "liegnn", "liegan", 0, dataset_path, gens, out, RunContext())
    values = {(r["split"], r["metric"]): r["value"] for r in res["rows"]}
    assert set(values) >= {("test", "accuracy"), ("test", "auc"), ("test", REJECTION), ("val", "auc"),
                           ("test", f"{REJECTION}_lower_bound"), ("train", "metric_cosine_to_minkowski")}
    assert all(np.isfinite(v) for v in values.values())
    assert values[("train", "metric_cosine_to_minkowski")] > 0.99
    assert all(r["method"] == "liegan" and r["model"] == "liegnn" for r in res["rows"])
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["rows"] == res["rows"] and on_disk["epochs_run"] >= 1
    with np.load(out / "roc.npz") as z:
        assert z["fpr"].shape == z["tpr"].shape and z["tpr"][-1] == 1.0
    assert (out / "log.csv").read_text().startswith("epoch,")
    assert not (out / "checkpoint.pt").exists()


def test_cli_baseline_and_report(dataset_path: Path, tmp_path: Path) -> None:
    """`liegan downstream-jets` through its own parser, then the jets table and ROC figure."""
    config = tmp_path / "top_tagging.json"
    cfg = tiny_config()
    cfg.update(data={"generator": "top_tagging"}, search_space={"n": 4}, methods={"liegan": {}})
    config.write_text(json.dumps(cfg))
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    runs = tmp_path / "runs"
    for model, symmetry in (("baseline", "none"), ("liegnn", "true")):
        out = runs / "top_tagging" / "downstream" / model / symmetry / "seed0"
        args = parser.parse_args(["downstream-jets", "--config", str(config), "--model", model, "--symmetry",
                                  symmetry, "--data", str(dataset_path), "--out", str(out), "--no-progress"])
        args.func(args)
        assert (out / "metrics.json").exists()
    report_jets(runs, tmp_path)
    table = (tmp_path / "tables" / "jets.md").read_text()
    assert "particle-flow baseline" in table and "Minkowski" in table
    assert (tmp_path / "figures" / "roc_top_tagging.png").exists()


def test_baseline_needs_no_symmetry(dataset_path: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="baseline"):
        run_jets_downstream(tiny_config(), "baseline", "true", 0, dataset_path, None, tmp_path, RunContext())


def test_resume_matches_an_uninterrupted_run(dataset_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed after epoch 1 and restarted, training ends with the same weights as in one go."""
    from liegan_core import downstream_jets
    from liegan_core.data import load

    data = load(dataset_path)
    train, val = (tuple(torch.as_tensor(a) for a in jet_arrays(data, s, 8, 100.0)) for s in ("train", "val"))
    settings = {**DEFAULT_SETTINGS, **TINY, "patience": 5}

    def fit(workdir: Path) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        net = LieGNN(minkowski_metric(), hidden=8, layers=1)
        train_classifier(net, train, val, settings, 0, RunContext(workdir=str(workdir), checkpoint_every=1))
        return net.state_dict()

    straight = fit(tmp_path / "straight")
    calls = {"n": 0, "die_at": 2}
    real_auc = downstream_jets.auc

    def counting_auc(scores: np.ndarray, labels: np.ndarray) -> float:
        calls["n"] += 1
        if calls["n"] == calls["die_at"]:
            raise KeyboardInterrupt
        return real_auc(scores, labels)

    monkeypatch.setattr(downstream_jets, "auc", counting_auc)
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "resumed")
    calls.update(n=0, die_at=-1)
    resumed = fit(tmp_path / "resumed")
    assert calls["n"] == 1  # only epoch 2 was trained again
    for key, value in straight.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=0)
