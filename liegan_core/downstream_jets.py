"""Downstream top tagging: LieGNN with a true, wrong or discovered metric, and a non-equivariant baseline.

One run (model x symmetry source x seed) trains on the train split's leading `n_particles`
constituents, keeps the epoch with the best validation AUC (stopping after `patience` epochs
without improvement), and evaluates on the test split. The symmetry sources:

  true     LieGNN with the Minkowski metric diag(1, -1, -1, -1) (LorentzNet, the oracle)
  wrong    LieGNN with the Euclidean metric I_4 (invariant under SO(4), not the Lorentz group)
  <method> LieGNN with J = lie.invariant_metric(generators) of that discovery run (same seed):
           the LieGAN paper's LieGNN
  none     the particle-flow baseline (model 'baseline' only)

The run folder gets metrics.json (tidy rows + provenance, written last), log.csv (per epoch) and
roc.npz (test ROC curve: fpr, tpr, thresholds), all written atomically.
"""
from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import load
from .data.dataset import Dataset
from .errors import UserError
from .io import config_hash, write_json, write_npz, write_text
from .lie import abs_cosine, invariant_metric, minkowski_metric
from .methods import RunContext
from .models.liegnn import LieGNN, ParticleFlowBaseline, normalised_metric
from .runner import code_version, log_csv, package_versions, peak_memory_mb
from .training import Checkpointer, Progress, batches, check_finite, resolve_device, seed_everything

MODELS = ("liegnn", "baseline")
FIXED_SYMMETRIES = ("none", "true", "wrong")
SIGNAL_EFFICIENCY = 0.3
REJECTION = "background_rejection_at_0.3"
EVAL_BATCH = 128
DEFAULT_SETTINGS: dict[str, Any] = {
    "n_particles": 30,
    "momentum_scale": 100.0,
    "hidden": 32,
    "layers": 3,
    "c_weight": 5e-3,
    "dropout": 0.1,
    "epochs": 8,
    "batch_size": 64,
    "lr": 1e-3,
    "warmup_epochs": 1,
    "weight_decay": 0.01,
    "patience": 4,
}


# ---------------------------------------------------------------- classifier metrics (numpy only)


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve of `scores` [N] (higher = more signal-like) for binary `labels` [N] (1 = signal).

    Returns (fpr, tpr, thresholds), each [K + 1] for K distinct scores: the point for cutting at
    `score >= thresholds[k]`, thresholds descending, starting at (0, 0) with threshold +inf.
    Tied scores form one step, so the trapezoidal area counts ties as half (Mann-Whitney).
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in length")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"a ROC curve needs both classes; got {n_pos} signal and {n_neg} background")
    order = np.argsort(-scores, kind="stable")
    s, p = scores[order], pos[order]
    last_of_group = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(p)[last_of_group]
    fp = np.cumsum(~p)[last_of_group]
    tpr = np.r_[0.0, tp / n_pos]
    fpr = np.r_[0.0, fp / n_neg]
    return fpr, tpr, np.r_[np.inf, s[last_of_group]]


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: P(signal score > background score) + P(tie) / 2, for [N] arrays."""
    fpr, tpr, _ = roc_curve(scores, labels)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def accuracy(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> float:
    """Fraction of [N] events classified right when calling `score >= threshold` signal."""
    return float(np.mean((np.asarray(scores) >= threshold) == (np.asarray(labels) == 1)))


def background_rejection(
    scores: np.ndarray, labels: np.ndarray, signal_efficiency: float = SIGNAL_EFFICIENCY
) -> tuple[float, bool]:
    """1 / eps_B at the loosest cut keeping at least `signal_efficiency` of the signal; [N] arrays.

    The cut is the score of the ceil(signal_efficiency * N_S)-th most signal-like signal event;
    eps_B is the fraction of background events scoring at least that. When no background passes
    (eps_B = 0) the rejection is unbounded on this test set: the returned value is then N_B, a
    lower bound (one passing background event would give exactly N_B), and the flag is True.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    pos = np.asarray(labels).ravel() == 1
    sig, bkg = np.sort(scores[pos])[::-1], scores[~pos]
    if sig.size == 0 or bkg.size == 0:
        raise ValueError(f"background rejection needs both classes; got {sig.size} signal and {bkg.size} background")
    k = max(int(np.ceil(signal_efficiency * sig.size - 1e-9)), 1)
    passed = int(np.sum(bkg >= sig[k - 1]))
    if passed == 0:
        return float(bkg.size), True
    return bkg.size / passed, False


# ---------------------------------------------------------------- data and models


def jet_arrays(
    data: Dataset, split: str, n_particles: int, momentum_scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One split's leading constituents, scaled: (x [N, P, 4] float32, mask [N, P] bool, labels [N] int64).

    Indexes the stored constituents [N_all, max_constituents, 4] once, already cut to P slots, so
    no copy of the full-width array is made per split.
    """
    for key in ("constituents", "n_constituents"):
        if key not in data.extras:
            raise UserError(f"dataset lacks extra array '{key}'; downstream jets need a top_tagging dataset")
    if split not in data.splits:
        raise UserError(f"dataset has no split '{split}'; it has {sorted(data.splits)}")
    idx = np.asarray(data.splits[split])
    p = min(int(n_particles), data.extras["constituents"].shape[1])
    x = (data.extras["constituents"][idx, :p].astype(np.float64) / momentum_scale).astype(np.float32)
    mask = np.arange(p)[None, :] < np.minimum(data.extras["n_constituents"][idx], p)[:, None]
    return x * mask[..., None], mask, np.asarray(data.y[idx], dtype=np.int64)


def metric_for(symmetry: str, generators_path: str | Path | None) -> np.ndarray:
    """The metric J [4, 4] for a LieGNN symmetry source (unnormalised; LieGNN rescales it)."""
    if symmetry == "true":
        return minkowski_metric()
    if symmetry == "wrong":
        return np.eye(4)
    if symmetry == "none":
        raise UserError("model 'liegnn' needs a symmetry ('true', 'wrong' or a discovery method), not 'none'")
    if generators_path is None:
        raise UserError(f"symmetry '{symmetry}' is a discovery method: pass its generators.npz (--generators)")
    path = Path(generators_path)
    if not path.exists():
        raise UserError(f"{path}: generators file not found; run `liegan discover --method {symmetry}` first")
    with np.load(path, allow_pickle=False) as z:
        if "generators" not in z.files:
            raise UserError(f"{path}: no array 'generators' (has {z.files})")
        gens = np.asarray(z["generators"], dtype=np.float64)
    if gens.ndim != 3 or gens.shape[1:] != (4, 4) or gens.shape[0] == 0:
        raise UserError(f"{path}: generators have shape {list(gens.shape)}; expected [c, 4, 4] with c >= 1")
    if not np.all(np.isfinite(gens)):
        raise UserError(f"{path}: generators contain non-finite values")
    return invariant_metric(gens)


def build_model(model: str, metric: np.ndarray | None, settings: dict[str, Any]) -> nn.Module:
    """LieGNN with `metric` [4, 4], or the particle-flow baseline (metric None), sized by `settings`."""
    if model == "liegnn":
        if metric is None:
            raise ValueError("model 'liegnn' needs a metric")
        return LieGNN(
            metric, hidden=int(settings["hidden"]), layers=int(settings["layers"]),
            c_weight=float(settings["c_weight"]), dropout=float(settings["dropout"]),
        )
    return ParticleFlowBaseline(hidden=int(settings["hidden"]), layers=int(settings["layers"]),
                                dropout=float(settings["dropout"]))


def resolve_settings(task_cfg: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(size name, settings) from the task's `downstream` section.

    `downstream.settings` maps size names (quick, paper) to settings; `downstream.size` picks one,
    else the profile's name when it is a size, else 'quick'. Missing keys take DEFAULT_SETTINGS.
    """
    section = task_cfg.get("downstream") or {}
    sizes = section.get("settings") or {}
    profile = (task_cfg.get("_profile") or {}).get("profile")
    size = section.get("size") or (profile if profile in sizes else "quick")
    if sizes and size not in sizes:
        raise UserError(f"task '{task_cfg.get('task')}': at 'downstream.size': '{size}' is not one of {sorted(sizes)}")
    chosen = sizes.get(size) or {}
    unknown = sorted(set(chosen) - set(DEFAULT_SETTINGS))
    if unknown:
        raise UserError(
            f"task '{task_cfg.get('task')}': at 'downstream.settings.{size}': unknown keys {unknown}; "
            f"allowed: {sorted(DEFAULT_SETTINGS)}"
        )
    return size, {**DEFAULT_SETTINGS, **chosen}


@torch.no_grad()
def predict(net: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
    """Signal probabilities [N] (float64 numpy) and logits [N, 2] (tensor), in eval mode and in batches."""
    net.eval()
    logits = torch.cat([net(x[i : i + EVAL_BATCH], mask[i : i + EVAL_BATCH]) for i in range(0, len(x), EVAL_BATCH)])
    return torch.softmax(logits, dim=1)[:, 1].double().cpu().numpy(), logits


def learning_rate(base: float, epoch: int, epochs: int, warmup: int) -> float:
    """Linear warm-up over the first `warmup` epochs, then cosine decay to 0 after the last (epochs 1-based)."""
    if epoch <= warmup:
        return base * epoch / (warmup + 1)
    return base * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1 - warmup) / max(epochs - warmup, 1)))


class BestEpoch:
    """The best validation AUC so far, its epoch and weights: state for early stopping and resume."""

    def __init__(self, net: nn.Module):
        self.net = net
        self.score = -np.inf
        self.epoch = 0
        self.weights = copy.deepcopy(net.state_dict())

    def update(self, score: float, epoch: int) -> None:
        if score > self.score:
            self.score, self.epoch = score, epoch
            self.weights = copy.deepcopy(self.net.state_dict())

    def state_dict(self) -> dict[str, Any]:
        return {"score": float(self.score), "epoch": self.epoch, "weights": self.weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.score, self.epoch, self.weights = float(state["score"]), int(state["epoch"]), state["weights"]


def train_classifier(
    net: nn.Module, train: tuple[torch.Tensor, ...], val: tuple[torch.Tensor, ...], settings: dict[str, Any],
    seed: int, ctx: RunContext,
) -> tuple[list[dict[str, Any]], int]:
    """Train with AdamW on cross-entropy (warm-up + cosine learning rate); keep the best-val-AUC weights.

    Returns (per-epoch log, best epoch); `net` ends with the best epoch's weights.

    train, val: (x [N, P, 4], mask [N, P], labels [N]) on the network's device.
    """
    gen = seed_everything(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=float(settings["lr"]), weight_decay=float(settings["weight_decay"]))
    best = BestEpoch(net)
    ckpt = Checkpointer(ctx.workdir, ctx.checkpoint_every, {"model": net, "optimiser": opt, "best": best}, gen)
    done, log = ckpt.restore()
    epochs, patience = int(settings["epochs"]), int(settings["patience"])
    x, mask, y = train
    y_val = val[2].cpu().numpy()
    bar = Progress(epochs - done, "downstream-jets", ctx.progress)
    for epoch in range(done + 1, epochs + 1):
        if best.epoch and epoch - best.epoch > patience:
            break
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = learning_rate(float(settings["lr"]), epoch, epochs, int(settings["warmup_epochs"]))
        net.train()
        total, count = 0.0, 0
        for step, idx in enumerate(batches(len(x), int(settings["batch_size"]), gen)):
            idx = idx.to(x.device)
            loss = F.cross_entropy(net(x[idx], mask[idx]), y[idx])
            check_finite("classification loss", loss, epoch, step, 0.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        probs, logits = predict(net, val[0], val[1])
        val_auc = auc(probs, y_val)
        row = {"epoch": epoch, "train_loss": total / count, "val_loss": float(F.cross_entropy(logits, val[2])),
               "val_accuracy": accuracy(probs, y_val), "val_auc": val_auc, "seconds": time.perf_counter() - t0}
        log.append(row)
        best.update(val_auc, epoch)
        ckpt.save_if_due(epoch, epochs, log)
        bar.update(1, loss=row["train_loss"], val_auc=val_auc)
    bar.close()
    net.load_state_dict(best.weights)
    return log, best.epoch


# ---------------------------------------------------------------- one run


def check_choice(model: str, symmetry: str) -> None:
    """UserError for an unknown model or a baseline given a symmetry (it has none to use)."""
    if model not in MODELS:
        raise UserError(f"unknown downstream model '{model}'; expected one of {MODELS}")
    if model == "baseline" and symmetry != "none":
        raise UserError(f"model 'baseline' is not equivariant: its symmetry must be 'none', got '{symmetry}'")


def run_jets_downstream(
    task_cfg: dict[str, Any], model: str, symmetry: str, seed: int, data_path: str | Path,
    generators_path: str | Path | None, out_dir: str | Path, ctx: RunContext,
) -> dict[str, Any]:
    """Train and test one top tagger; write out_dir/{metrics.json, log.csv, roc.npz}; return metrics.json's content.

    task_cfg: the resolved task config (its `downstream` section sizes the run); model: 'liegnn' or
    'baseline'; symmetry: 'true' | 'wrong' | a discovery method name (LieGNN) or 'none' (baseline);
    generators_path: that method's generators.npz, for a method symmetry only.
    """
    check_choice(model, symmetry)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx.workdir = str(out_dir)
    size, settings = resolve_settings(task_cfg)
    metric = metric_for(symmetry, generators_path) if model == "liegnn" else None
    device = resolve_device(ctx.device)

    t0 = time.perf_counter()
    dataset = load(data_path)
    arrays = {}
    for split in ("train", "val", "test"):
        x, mask, y = jet_arrays(dataset, split, int(settings["n_particles"]), float(settings["momentum_scale"]))
        if len(np.unique(y)) < 2:
            raise UserError(f"{data_path}: split '{split}' does not hold both classes")
        arrays[split] = (torch.as_tensor(x, device=device), torch.as_tensor(mask, device=device),
                         torch.as_tensor(y, device=device))
    del dataset
    seed_everything(seed)
    net = build_model(model, metric, settings).to(device)
    invariant_scale = net.calibrate(*arrays["train"][:2]) if isinstance(net, LieGNN) else None
    log, best_epoch = train_classifier(net, arrays["train"], arrays["val"], settings, seed, ctx)

    rows: list[dict[str, Any]] = []
    method = symmetry if symmetry not in FIXED_SYMMETRIES else ""
    base = {"task": task_cfg["task"], "method": method, "model": model, "symmetry": symmetry, "seed": seed}
    fpr = tpr = thresholds = None
    for split in ("val", "test"):
        probs, _ = predict(net, arrays[split][0], arrays[split][1])
        labels = arrays[split][2].cpu().numpy()
        values = {"accuracy": accuracy(probs, labels), "auc": auc(probs, labels)}
        if split == "test":
            rejection, bounded = background_rejection(probs, labels)
            values[REJECTION] = rejection
            values[f"{REJECTION}_lower_bound"] = float(bounded)
            fpr, tpr, thresholds = roc_curve(probs, labels)
        rows += [{**base, "split": split, "metric": k, "value": float(v)} for k, v in values.items()]
    if metric is not None:
        rows.append({**base, "split": "train", "metric": "metric_cosine_to_minkowski",
                     "value": abs_cosine(metric, minkowski_metric())})
    seconds = time.perf_counter() - t0

    write_npz(out_dir / "roc.npz", fpr=fpr, tpr=tpr, thresholds=thresholds)
    write_text(out_dir / "log.csv", log_csv(log))
    run_cfg = {k: v for k, v in task_cfg.items() if not k.startswith("_")}
    result = {
        "rows": rows,
        "task": task_cfg["task"],
        "model": model,
        "symmetry": symmetry,
        "seed": seed,
        "size": size,
        "settings": settings,
        "best_epoch": best_epoch,
        "epochs_run": len(log),
        "n_jets": {split: int(len(a[2])) for split, a in arrays.items()},
        "metric": None if metric is None else normalised_metric(metric).tolist(),
        "invariant_scale": invariant_scale,
        "run_seconds": seconds,
        "peak_memory_mb": peak_memory_mb(),
        "config_hash": config_hash({"task": run_cfg["task"], "data": run_cfg.get("data"), "settings": settings,
                                    "model": model, "symmetry": symmetry, "seed": seed}),
        "code_version": code_version(),
        "versions": package_versions(),
        "device": str(device),
    }
    write_json(out_dir / "metrics.json", result)
    (out_dir / "checkpoint.pt").unlink(missing_ok=True)  # resume state of a finished run is spent
    return result


# ---------------------------------------------------------------- command line


def cmd_downstream_jets(args: argparse.Namespace) -> None:
    from .cli import _run_context, _task_config
    from .training import set_threads

    set_threads(args.threads)
    cfg = _task_config(args)
    ctx = _run_context(args, cfg)
    res = run_jets_downstream(cfg, args.model, args.symmetry, args.seed, args.data, args.generators, args.out, ctx)
    test = {r["metric"]: r["value"] for r in res["rows"] if r["split"] == "test"}
    print(f"{cfg['task']}/{args.model}/{args.symmetry}/seed{args.seed}: accuracy={test['accuracy']:.4f} "
          f"auc={test['auc']:.4f} 1/eps_B={test[REJECTION]:.1f} in {res['run_seconds']:.1f} s -> {args.out}",
          file=sys.stderr)


def cmd_downstream_jets_report(args: argparse.Namespace) -> None:
    from .report.jets import report_jets

    report_jets(Path(args.runs), Path(args.out))


def add_parser(subparsers: Any) -> None:
    """Add the `downstream-jets` (one run) and `downstream-jets-report` (tables, ROC figure) subcommands."""
    from .cli import _add_profile, _add_task

    p = subparsers.add_parser("downstream-jets", help="train and test a top tagger (LieGNN or baseline)")
    _add_task(p, required=True)
    _add_profile(p)
    p.add_argument("--model", choices=MODELS, default="liegnn")
    p.add_argument("--symmetry", default="true",
                   help="'true' (Minkowski), 'wrong' (Euclidean), a discovery method (needs --generators), "
                        "or 'none' (baseline)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", required=True, help="top_tagging dataset .npz (from `liegan generate`)")
    p.add_argument("--generators", help="generators.npz of the discovery run, for a method symmetry")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="overrides the profile's device")
    p.add_argument("--threads", type=int, help="torch threads for this job")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_downstream_jets)

    r = subparsers.add_parser("downstream-jets-report", help="top-tagging tables and ROC figures from finished runs")
    r.add_argument("--runs", default="results/runs")
    r.add_argument("--out", default="results")
    r.set_defaults(func=cmd_downstream_jets_report)
