"""Downstream regression: does a symmetry help predict 2-body trajectories, and does a wrong one hurt?

The LieGAN paper's claim (Section 5.1): the discovered symmetry, enforced in an equivariant MLP or
used for data augmentation, improves accuracy and generalisation. One run is a task x model x
symmetry source x seed:

  models     mlp      a plain MLP on the flattened windows (the baseline)
             augment  the same MLP trained on transformed data: the prediction is g^-1 f(g x) with
                      one random g = exp(sum_i w_i L_i) per sample while training, and at test time
                      the mean of g^-1 f(g x) over `eval_copies` random g (the published augmentation
                      experiment's test-time averaging; its eval mode)
             emlp     the equivariant MLP built from the generators (models/emlp.py)
  symmetry   none     no symmetry (model mlp only: augment and emlp without a symmetry are the MLP)
             true     the dataset's true algebra (SO(2) on every 2-vector)
             wrong    a named wrong algebra from WRONG_SYMMETRIES (`downstream.wrong_symmetry`)
             <method> the generators a discovery method learned on the same task and seed

Coefficients w: true and wrong use `models.augment.coefficients` (the paper: w ~ N(0, 3^2));
a learned symmetry uses the discovery run's own `coefficient_distribution` (metrics.json), so the
learned generator's scale and law are both the method's.

Data: the task's generator with `downstream.data` merged over the task's `data` section (for
two_body: 5-step input and 5-step output windows, 40 numbers each way), written by the pipeline to
results/downstream_data/<task>.npz with `liegan generate`; without --data the command generates
the same dataset in-process (deterministic: same generator, params and seed). Inputs and outputs
are divided by ONE global scale (the RMS of the training inputs): a per-feature standardisation
would break equivariance. Errors are reported in the data's own units (the scale undone).

Splits, by the angle at which an orbit starts (extra `initial_angle_deg`):

  train         orbits starting in the lower half-plane, less the held-out ones
  test          held-out lower-half orbits (`test_fraction` of them): in distribution
  test_rotated  `test` moved by random elements of the TRUE group (law `rotated_test`)
  shift_half    orbits starting in the upper half-plane (the paper's test set; with the
                generator's default angle split these are all its test orbits)
  shift_quarter a second model of the same condition trained only on the train orbits starting in
                the quadrant [-180, -90) degrees, tested on every orbit starting outside it
  test@frac<f>  `test` error of a model trained on a random fraction f of the train orbits for as
                many gradient steps as the main model (more epochs), so the sample-efficiency
                curve measures data, not optimisation budget; f = 1 is the main model

Every result row has metric `test_mse` (mean squared error per number, data units), except
`train_mse` (split train), `equivariance_error` (split test: E|f(gx) - g f(x)|^2 / E|f(x)|^2 for g
from the true group) and `algebra_similarity` (split empty: of the generators used to the truth).
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, replace
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .config import deep_merge
from .data import generate, load
from .data.dataset import Dataset
from .errors import UserError
from .group import act_blocks, act_vector
from .io import config_hash, write_json, write_text
from .lie import algebra_similarity, repeat_block, so2_generator
from .methods import RunContext
from .models.emlp import EMLP, split_repeated_block
from .nets import mlp
from .runner import code_version, log_csv, package_versions, peak_memory_mb
from .training import Checkpointer, Progress, batches, check_finite, resolve_device, seed_everything

Array = np.ndarray
MODELS = ("mlp", "augment", "emlp")
FIXED_SOURCES = ("none", "true", "wrong")
SPLITS = ("test", "test_rotated", "shift_half", "shift_quarter")
QUARTER_DEG = (-180.0, -90.0)
EVAL_BATCH = 4096
VECTOR = {"type": "vector"}

MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": [32, 32, 32], "lr": 1e-4, "batch_size": 512, "epochs": 2000},
    "augment": {"hidden": [32, 32, 32], "lr": 1e-4, "batch_size": 512, "epochs": 2000,
                "coefficients": {"distribution": "normal", "sigma": 3.0}, "eval_copies": 4},
    "emlp": {"hidden_channels": 128, "num_layers": 3, "tol": 0.05, "lr": 1e-4, "batch_size": 1000, "epochs": 5000},
}
SECTION_DEFAULTS: dict[str, Any] = {
    "data": {},
    "test_fraction": 0.2,
    "train_fractions": [1.0],
    "rotated_test": {"distribution": "uniform", "low": -math.pi, "high": math.pi},
    "wrong_symmetry": "rotate_positions",
    "learned_from": None,
    "models": {},
}


# ---------------------------------------------------------------- settings


def is_regression_task(task_cfg: dict[str, Any]) -> bool:
    """Whether the task asks for this module's runs: its `downstream.models` maps model names to settings.

    (Top tagging lists its models instead, `models: [liegnn, baseline]`: downstream_jets.py runs those.)
    """
    return isinstance((task_cfg.get("downstream") or {}).get("models"), dict)


def _unknown_keys(given: dict[str, Any], allowed: dict[str, Any], where: str, task: str) -> None:
    unknown = [k for k in given if k not in allowed]
    if unknown:
        hints = []
        for k in unknown:
            close = get_close_matches(k, list(allowed), n=1)
            hints.append(f"'{k}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise UserError(f"task '{task}': at '{where}': unknown key {', '.join(hints)}; allowed: {sorted(allowed)}")


def downstream_settings(task_cfg: dict[str, Any]) -> dict[str, Any]:
    """The task's `downstream` section over SECTION_DEFAULTS; each listed model over MODEL_DEFAULTS.

    Only the models named under `downstream.models` run (an empty mapping takes the defaults).
    """
    task = str(task_cfg.get("task"))
    section = task_cfg.get("downstream") or {}
    _unknown_keys(section, SECTION_DEFAULTS, "downstream", task)
    settings = {**SECTION_DEFAULTS, **section}
    models = settings["models"] or {}
    _unknown_keys(models, MODEL_DEFAULTS, "downstream.models", task)
    resolved = {}
    for name, given in models.items():
        _unknown_keys(given or {}, MODEL_DEFAULTS[name], f"downstream.models.{name}", task)
        resolved[name] = {**MODEL_DEFAULTS[name], **(given or {})}
    settings["models"] = resolved
    fractions = [float(f) for f in settings["train_fractions"]]
    if any(not 0.0 < f <= 1.0 for f in fractions):
        raise UserError(f"task '{task}': at 'downstream.train_fractions': fractions must lie in (0, 1], "
                        f"got {fractions}")
    settings["train_fractions"] = sorted(set(fractions))
    if not 0.0 < float(settings["test_fraction"]) < 1.0:
        raise UserError(f"task '{task}': at 'downstream.test_fraction': must lie in (0, 1), "
                        f"got {settings['test_fraction']}")
    return settings


def learned_sources(task_cfg: dict[str, Any]) -> list[str]:
    """Discovery methods usable as symmetry sources: `downstream.learned_from` (default: all) that the task runs."""
    wanted = downstream_settings(task_cfg)["learned_from"]
    methods = list(task_cfg.get("methods") or {})
    return [m for m in (methods if wanted is None else wanted) if m in methods]


def conditions(task_cfg: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (model, symmetry source) the task runs: mlp with none; augment and emlp with each source."""
    models = downstream_settings(task_cfg)["models"]
    out = [("mlp", "none")] if "mlp" in models else []
    sources = ["true", "wrong", *learned_sources(task_cfg)]
    return out + [(m, s) for m in ("augment", "emlp") if m in models for s in sources]


def check_condition(task_cfg: dict[str, Any], model: str, symmetry: str) -> None:
    """UserError unless (model, symmetry) is one of the task's conditions, naming what is allowed."""
    allowed = conditions(task_cfg)
    if (model, symmetry) in allowed:
        return
    if model not in MODELS:
        raise UserError(f"unknown downstream model '{model}'; expected one of {MODELS}")
    if model == "mlp" and symmetry != "none":
        raise UserError(f"model 'mlp' uses no symmetry: --symmetry must be 'none', got '{symmetry}'")
    if symmetry == "none":
        raise UserError(f"model '{model}' without a symmetry is the MLP: use --model mlp --symmetry none")
    raise UserError(
        f"task '{task_cfg['task']}': condition {model}/{symmetry} is not configured; its conditions: "
        + ", ".join(f"{m}/{s}" for m, s in allowed)
    )


def downstream_data_config(task_cfg: dict[str, Any]) -> dict[str, Any]:
    """The task config whose `data` section generates the downstream dataset (`downstream.data` merged in)."""
    merged = deep_merge(task_cfg["data"], downstream_settings(task_cfg)["data"])
    return {k: v for k, v in task_cfg.items() if not k.startswith("_")} | {"data": merged}


def downstream_dataset(task_cfg: dict[str, Any]) -> Dataset:
    """Generate the downstream dataset in-process (the same arrays `liegan generate` writes for it)."""
    data = downstream_data_config(task_cfg)["data"]
    return generate(data["generator"], data.get("params") or {}, int(data.get("seed", 0)))


# ---------------------------------------------------------------- symmetries

WrongSymmetry = Callable[[int], Array]
WRONG_SYMMETRIES: dict[str, WrongSymmetry] = {}


def register_wrong_symmetry(name: str) -> Callable[[WrongSymmetry], WrongSymmetry]:
    """Register `fn(n) -> generators [c, n, n]`, a wrong algebra for n-dimensional data, under `name`."""

    def deco(fn: WrongSymmetry) -> WrongSymmetry:
        WRONG_SYMMETRIES[name] = fn
        return fn

    return deco


def _phase_space_blocks(n: int, name: str) -> int:
    """Number of bodies of (q1, p1, q2, p2, ...) states with 2-D q and p; UserError if n does not fit."""
    if n % 4:
        raise UserError(f"wrong symmetry '{name}' acts on states (q1, p1, q2, p2, ...) of 2-D vectors: "
                        f"the dimension must be a multiple of 4, got {n}")
    return n // 4


@register_wrong_symmetry("rotate_positions")
def rotate_positions(n: int) -> Array:
    """Rotate every position q_i but no momentum p_i: J on the q blocks, 0 on the p blocks, [1, n, n]."""
    bodies = _phase_space_blocks(n, "rotate_positions")
    block = np.zeros((4, 4))
    block[:2, :2] = so2_generator()
    return repeat_block(block, bodies)[None]


@register_wrong_symmetry("counter_rotate")
def counter_rotate(n: int) -> Array:
    """Rotate positions by +t and momenta by -t: J on q blocks, -J on p blocks, [1, n, n] (orthogonal to so(2))."""
    bodies = _phase_space_blocks(n, "counter_rotate")
    j = so2_generator()
    block = np.zeros((4, 4))
    block[:2, :2], block[2:, 2:] = j, -j
    return repeat_block(block, bodies)[None]


@register_wrong_symmetry("scaling")
def scaling(n: int) -> Array:
    """Uniform dilation of the whole vector: the identity generator, [1, n, n]."""
    return np.eye(n)[None]


def wrong_symmetry(name: str, n: int) -> Array:
    """Generators [c, n, n] of the registered wrong symmetry `name` for n-dimensional vectors."""
    if name not in WRONG_SYMMETRIES:
        close = get_close_matches(name, list(WRONG_SYMMETRIES), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UserError(f"at 'downstream.wrong_symmetry': unknown wrong symmetry '{name}'{hint}; "
                        f"registered: {sorted(WRONG_SYMMETRIES)}")
    return np.asarray(WRONG_SYMMETRIES[name](n), dtype=np.float64)


@dataclass
class Symmetry:
    """Generators [c, n, n] acting on each n-vector of the data, and the law of w for g = exp(sum_i w_i L_i)."""

    source: str
    generators: Array
    coefficients: dict[str, Any]


def default_generators_path(results: str | Path, task: str, method: str, seed: int) -> Path:
    """Where the pipeline keeps a discovery run's generators: results/runs/<task>/discover/<method>/seed<k>/."""
    return Path(results) / "runs" / task / "discover" / method / f"seed{seed}" / "generators.npz"


def load_learned(generators_path: str | Path) -> tuple[Array, dict[str, Any]]:
    """(generators [c, n, n], coefficient_distribution) of a discovery run folder's generators.npz + metrics.json."""
    path = Path(generators_path)
    if not path.exists():
        raise UserError(f"{path}: generators file not found; run the discovery first (`liegan discover`)")
    try:
        with np.load(path, allow_pickle=False) as z:
            gens = np.asarray(z["generators"], dtype=np.float64)
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"{path}: cannot read the array 'generators' ({e})") from e
    if gens.ndim != 3 or gens.shape[1] != gens.shape[2]:
        raise UserError(f"{path}: 'generators' must have shape [c, n, n], got {list(gens.shape)}")
    if gens.shape[0] == 0 or not np.abs(gens).max() > 0:
        raise UserError(f"{path}: the discovery found no generator, so there is no symmetry to use")
    metrics = path.with_name("metrics.json")
    if not metrics.exists():
        raise UserError(f"{metrics}: missing beside {path.name}; it holds the coefficient distribution")
    law = json.loads(metrics.read_text()).get("coefficient_distribution") or {}
    if not law:
        raise UserError(f"{metrics}: has no 'coefficient_distribution' to sample group elements from")
    return gens, law


def resolve_symmetry(
    source: str, settings: dict[str, Any], dataset: Dataset, generators_path: str | Path | None
) -> Symmetry | None:
    """The generators and coefficient law of a symmetry source (None for 'none')."""
    if source == "none":
        return None
    law = dict(settings["models"].get("augment", MODEL_DEFAULTS["augment"])["coefficients"])
    if source == "true":
        if dataset.true_algebra is None:
            raise UserError("symmetry 'true': the dataset has no true algebra")
        return Symmetry(source, np.asarray(dataset.true_algebra, dtype=np.float64), law)
    if source == "wrong":
        return Symmetry(source, wrong_symmetry(str(settings["wrong_symmetry"]), dataset.n), law)
    if generators_path is None:
        raise UserError(f"symmetry '{source}' is a discovery method: give its generators.npz (--generators)")
    gens, learned_law = load_learned(generators_path)
    if gens.shape[-1] != dataset.n:
        raise UserError(f"{generators_path}: generators act on {gens.shape[-1]}-vectors, the data has {dataset.n}")
    return Symmetry(source, gens, learned_law)


def sample_coefficients(law: dict[str, Any], batch: int, channels: int, gen: torch.Generator) -> torch.Tensor:
    """w [batch, channels] from {"distribution": normal (sigma: number or one per channel) | uniform (low,
    high) | integer (low, high, inclusive)}, on the CPU in float64."""
    kind = law.get("distribution", "normal")
    if kind == "normal":
        sigma = torch.as_tensor(law.get("sigma", 1.0), dtype=torch.float64).reshape(-1)
        return torch.randn(batch, channels, generator=gen, dtype=torch.float64) * sigma
    low, high = float(law.get("low", -1.0)), float(law.get("high", 1.0))
    if kind == "uniform":
        return low + (high - low) * torch.rand(batch, channels, generator=gen, dtype=torch.float64)
    if kind == "integer":
        return torch.randint(int(low), int(high) + 1, (batch, channels), generator=gen).double()
    raise UserError(f"unknown coefficient distribution '{kind}'; expected normal, uniform or integer")


def group_elements(generators: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """g = exp(sum_i w_i L_i): generators [c, n, n], w [B, c] -> [B, n, n]."""
    return torch.linalg.matrix_exp(torch.einsum("bc,cij->bij", w.to(generators), generators))


# ---------------------------------------------------------------- data


def regression_splits(dataset: Dataset, test_fraction: float, seed: int) -> dict[str, Array]:
    """Row indices of train, test, shift_half, train_quarter and shift_quarter (see the module docstring).

    Orbits, not windows, are held out, so no test window shares an orbit with a training window.
    `seed` (the data seed) fixes the held-out orbits, the same for every condition and training seed.
    """
    for key in ("orbit", "initial_angle_deg"):
        if key not in dataset.extras:
            raise UserError(f"dataset lacks the extra array '{key}': downstream regression needs orbit data "
                            "(e.g. the two_body generator)")
    orbit = dataset.extras["orbit"]
    angle = dataset.extras["initial_angle_deg"]
    lower = angle < 0.0
    lower_orbits = np.unique(orbit[lower])
    n_test = int(round(test_fraction * lower_orbits.size))
    if n_test < 1 or n_test >= lower_orbits.size or lower.all():
        raise UserError(f"downstream splits: {lower_orbits.size} lower-half and {np.unique(orbit[~lower]).size} "
                        "upper-half orbits leave an empty train, test or shift_half split; generate more orbits")
    held_out = np.random.default_rng(seed).choice(lower_orbits, n_test, replace=False)
    is_test = np.isin(orbit, held_out)
    in_quarter = (angle >= QUARTER_DEG[0]) & (angle < QUARTER_DEG[1])
    train = lower & ~is_test
    splits = {
        "train": np.flatnonzero(train),
        "test": np.flatnonzero(is_test),
        "shift_half": np.flatnonzero(~lower),
        "train_quarter": np.flatnonzero(train & in_quarter),
        "shift_quarter": np.flatnonzero(~in_quarter),
    }
    if splits["train_quarter"].size == 0:
        raise UserError("downstream splits: no training orbit starts in the quadrant [-180, -90) degrees")
    return splits


def orbit_subset(rows: Array, orbit: Array, fraction: float, rng: np.random.Generator) -> Array:
    """The rows of a random `fraction` of the orbits among `rows` (at least one orbit)."""
    orbits = np.unique(orbit[rows])
    keep = rng.choice(orbits, max(1, int(round(fraction * orbits.size))), replace=False)
    return rows[np.isin(orbit[rows], keep)]


# ---------------------------------------------------------------- models


class WindowMLP(nn.Module):
    """MLP on flattened windows: x [B, T_in, n] -> y [B, T_out, n] (ReLU between the hidden layers)."""

    def __init__(self, t_in: int, t_out: int, n: int, hidden: list[int]) -> None:
        super().__init__()
        self.t_out, self.n = t_out, n
        self.net = mlp([t_in * n, *hidden, t_out * n])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).unflatten(1, (self.t_out, self.n))


class WindowEMLP(nn.Module):
    """EMLP from generators [c, n, n] on windows: x [B, T_in, n] -> y [B, T_out, n], each step one copy of T1."""

    def __init__(self, generators: Array, t_in: int, t_out: int, hidden_channels: int, num_layers: int, tol: float):
        super().__init__()
        self.t_out, self.n = t_out, generators.shape[-1]
        self.net = EMLP.from_generators(generators, in_copies=t_in, out_copies=t_out,
                                        hidden_channels=hidden_channels, num_layers=num_layers, tol=tol)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).unflatten(1, (self.t_out, self.n))


class Augmented(nn.Module):
    """A window model f made invariant in expectation: predicts g^-1 f(g x) for random g = exp(sum_i w_i L_i).

    Training: one g per sample. Evaluation: the mean over `eval_copies` random g (test-time averaging
    as in the published augmentation experiment). Shapes: x [B, T_in, n] -> [B, T_out, n].
    """

    def __init__(self, net: nn.Module, symmetry: Symmetry, eval_copies: int, gen: torch.Generator) -> None:
        super().__init__()
        self.net, self.law, self.eval_copies, self.gen = net, symmetry.coefficients, int(eval_copies), gen
        block, _ = split_repeated_block(symmetry.generators)  # kron(I_k, B): exponentiate the small block only
        self.register_buffer("blocks", torch.as_tensor(block, dtype=torch.get_default_dtype()))

    def transformed(self, x: torch.Tensor) -> torch.Tensor:
        """g^-1 f(g x) with a fresh g per sample."""
        w = sample_coefficients(self.law, x.shape[0], self.blocks.shape[0], self.gen).to(x.device)
        g, g_inv = group_elements(self.blocks, w), group_elements(self.blocks, -w)
        return act_blocks(g_inv, self.net(act_blocks(g, x, VECTOR)), VECTOR)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.transformed(x)
        return torch.stack([self.transformed(x) for _ in range(self.eval_copies)]).mean(0)


def build_model(
    model: str, symmetry: Symmetry | None, hp: dict[str, Any], t_in: int, t_out: int, n: int, gen: torch.Generator
) -> nn.Module:
    """The network of one condition; hp: that model's settings (MODEL_DEFAULTS keys)."""
    if model == "emlp":
        assert symmetry is not None
        return WindowEMLP(symmetry.generators, t_in, t_out, int(hp["hidden_channels"]), int(hp["num_layers"]),
                          float(hp["tol"]))
    net = WindowMLP(t_in, t_out, n, [int(h) for h in hp["hidden"]])
    if model == "augment":
        assert symmetry is not None
        return Augmented(net, symmetry, int(hp["eval_copies"]), gen)
    return net


# ---------------------------------------------------------------- training and evaluation


def fit(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, hp: dict[str, Any], gen: torch.Generator, ctx: RunContext,
    desc: str,
) -> list[dict[str, Any]]:
    """Adam on the mean squared error of normalised windows x [N, T_in, n] -> y [N, T_out, n].

    Resumable: a checkpoint in ctx.workdir (if set) is restored, and saved every ctx.checkpoint_every
    epochs. Returns one log row per epoch (epoch, train_loss, seconds).
    """
    opt = torch.optim.Adam(net.parameters(), lr=float(hp["lr"]))
    epochs = int(hp["epochs"])
    ckpt = Checkpointer(ctx.workdir, ctx.checkpoint_every, {"model": net, "optimiser": opt}, gen)
    done, log = ckpt.restore()
    bar = Progress(epochs - done, desc, ctx.progress)
    for epoch in range(done + 1, epochs + 1):
        t0 = time.perf_counter()
        net.train()
        total = 0.0
        for step, idx in enumerate(batches(len(x), int(hp["batch_size"]), gen)):
            idx = idx.to(x.device)
            loss = ((net(x[idx]) - y[idx]) ** 2).mean()
            check_finite("downstream training loss", loss, epoch, step, 0.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        log.append({"epoch": epoch, "train_loss": total / len(x), "seconds": time.perf_counter() - t0})
        ckpt.save_if_due(epoch, epochs, log)
        bar.update(1, loss=log[-1]["train_loss"])
    bar.close()
    return log


@torch.no_grad()
def predict(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Predictions [N, T_out, n] in eval mode, in batches."""
    net.eval()
    return torch.cat([net(x[i : i + EVAL_BATCH]) for i in range(0, len(x), EVAL_BATCH)])


def mse(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared error per number of normalised windows (multiply by scale^2 for data units)."""
    return float(((predict(net, x) - y) ** 2).mean())


def equivariance_error(net: nn.Module, x: torch.Tensor, truth: torch.Tensor, law: dict[str, Any],
                       gen: torch.Generator) -> float:
    """E|f(g x) - g f(x)|^2 / E|f(x)|^2 over x [N, T, n] with one g of the true group (generators
    truth [k, n, n], coefficients from `law`) per row: 0 for an exactly equivariant model."""
    g = group_elements(truth, sample_coefficients(law, len(x), truth.shape[0], gen).to(x.device))
    fx = predict(net, x)
    return float(((predict(net, act_vector(g, x)) - act_vector(g, fx)) ** 2).sum() / (fx**2).sum())


# ---------------------------------------------------------------- one run


def run_downstream(
    task_cfg: dict[str, Any], model: str, symmetry: str, seed: int, data_path: str | Path | None,
    generators_path: str | Path | None, out_dir: str | Path, ctx: RunContext,
) -> dict[str, Any]:
    """Train and test one condition; write out_dir/{metrics.json, log.csv}; return metrics.json's content.

    task_cfg: the resolved task config with a `downstream` section (see downstream_settings);
    model: mlp | augment | emlp; symmetry: none | true | wrong | a discovery method name;
    data_path: the downstream dataset .npz, or None to generate it in-process;
    generators_path: the method's generators.npz (metrics.json beside it), for a method symmetry.
    Trains the main model (train split), the quarter model (same epochs) and one model per train
    fraction < 1 (as many gradient steps as the main model).
    """
    check_condition(task_cfg, model, symmetry)
    settings = downstream_settings(task_cfg)
    hp = settings["models"][model]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(ctx.device)
    t_start = time.perf_counter()

    dataset = load(data_path) if data_path else downstream_dataset(task_cfg)
    if dataset.x_rep.get("type") != "vector" or dataset.y_rep.get("type") != "vector" or dataset.x.ndim != 3:
        raise UserError("downstream regression needs vector windows x [N, T_in, n] and y [N, T_out, n]")
    sym = resolve_symmetry(symmetry, settings, dataset, generators_path)
    data_seed = int(task_cfg["data"].get("seed", 0))
    splits = regression_splits(dataset, float(settings["test_fraction"]), data_seed)
    scale = float(np.sqrt(np.mean(dataset.x[splits["train"]] ** 2)))
    dtype = torch.get_default_dtype()
    x_all = torch.as_tensor(dataset.x / scale, dtype=dtype, device=device)
    y_all = torch.as_tensor(dataset.y / scale, dtype=dtype, device=device)
    t_in, n = dataset.x.shape[1:]
    t_out = dataset.y.shape[1]
    truth = torch.as_tensor(dataset.true_algebra, dtype=dtype, device=device)
    eval_gen = torch.Generator().manual_seed(data_seed + 7919)
    law = settings["rotated_test"]
    g_test = group_elements(truth, sample_coefficients(law, len(splits["test"]), truth.shape[0], eval_gen).to(device))
    rows_of = {k: torch.as_tensor(v, device=device) for k, v in splits.items()}
    x_rot, y_rot = act_vector(g_test, x_all[rows_of["test"]]), act_vector(g_test, y_all[rows_of["test"]])

    epochs, batch = int(hp["epochs"]), int(hp["batch_size"])
    trainings: list[tuple[str, Array, int]] = [
        ("main", splits["train"], epochs), ("quarter", splits["train_quarter"], epochs)
    ]
    subset_rng = np.random.default_rng(seed)
    main_steps = epochs * math.ceil(len(splits["train"]) / batch)
    for f in settings["train_fractions"]:
        if f < 1.0:
            subset = orbit_subset(splits["train"], dataset.extras["orbit"], f, subset_rng)
            trainings.append((f"frac{f:g}", subset, math.ceil(main_steps / math.ceil(len(subset) / batch))))

    method = symmetry if symmetry not in FIXED_SOURCES else ""
    base = {"task": task_cfg["task"], "method": method, "model": model, "symmetry": symmetry, "seed": seed}
    rows: list[dict[str, Any]] = []

    def row(split: str, metric: str, value: float) -> None:
        rows.append({**base, "split": split, "metric": metric, "value": float(value)})

    units = scale**2
    main_log: list[dict[str, Any]] = []
    trained: dict[str, dict[str, int]] = {}
    for name, train_rows, train_epochs in trainings:
        gen = seed_everything(seed)
        net = build_model(model, sym, hp, t_in, t_out, n, gen).to(device)
        idx = torch.as_tensor(train_rows, device=device)
        run_ctx = replace(ctx, workdir=str(out_dir / "checkpoints" / name))
        log = fit(net, x_all[idx], y_all[idx], {**hp, "epochs": train_epochs}, gen, run_ctx,
                  f"downstream {model}/{symmetry} {name}")
        trained[name] = {"rows": int(len(train_rows)), "epochs": train_epochs}
        if name == "main":
            main_log = log
            row("train", "train_mse", units * mse(net, x_all[idx], y_all[idx]))
            test_mse = units * mse(net, x_all[rows_of["test"]], y_all[rows_of["test"]])
            row("test", "test_mse", test_mse)
            row("test_rotated", "test_mse", units * mse(net, x_rot, y_rot))
            row("shift_half", "test_mse", units * mse(net, x_all[rows_of["shift_half"]], y_all[rows_of["shift_half"]]))
            row("test", "equivariance_error", equivariance_error(net, x_all[rows_of["test"]], truth, law, eval_gen))
            if 1.0 in settings["train_fractions"]:
                row("test@frac1", "test_mse", test_mse)
        elif name == "quarter":
            row("shift_quarter", "test_mse",
                units * mse(net, x_all[rows_of["shift_quarter"]], y_all[rows_of["shift_quarter"]]))
        else:
            row(f"test@{name}", "test_mse", units * mse(net, x_all[rows_of["test"]], y_all[rows_of["test"]]))
    if sym is not None:
        row("", "algebra_similarity", algebra_similarity(sym.generators, dataset.true_algebra)["algebra_similarity"])
    seconds = time.perf_counter() - t_start

    write_text(out_dir / "log.csv", log_csv(main_log))
    run_cfg = {k: v for k, v in task_cfg.items() if not k.startswith("_")}
    result = {
        "rows": rows,
        "task": task_cfg["task"],
        "model": model,
        "symmetry": symmetry,
        "seed": seed,
        "settings": {k: v for k, v in settings.items() if k != "models"} | {"model": hp},
        "scale": scale,
        "trainings": trained,
        "split_rows": {k: int(len(v)) for k, v in splits.items()},
        "generators": None if sym is None else np.round(sym.generators, 6).tolist(),
        "coefficient_distribution": None if sym is None or model != "augment" else sym.coefficients,
        "data": str(data_path) if data_path else "generated in-process",
        "run_seconds": seconds,
        "peak_memory_mb": peak_memory_mb(),
        "config_hash": config_hash({"task": run_cfg["task"], "data": downstream_data_config(task_cfg)["data"],
                                    "settings": settings, "model": model, "symmetry": symmetry, "seed": seed}),
        "code_version": code_version(),
        "versions": package_versions(),
        "device": str(device),
    }
    write_json(out_dir / "metrics.json", result)
    shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)  # resume state of a finished run is spent
    return result


# ---------------------------------------------------------------- command line


def cmd_downstream(args: argparse.Namespace) -> None:
    from .cli import _run_context, _task_config
    from .training import set_threads

    set_threads(args.threads)
    cfg = _task_config(args)
    if not is_regression_task(cfg):
        raise UserError(f"task '{cfg['task']}': its `downstream` section does not map models to settings, so "
                        "`liegan downstream` has nothing to run (top tagging uses `liegan downstream-jets`)")
    ctx = _run_context(args, cfg)
    gens = args.generators
    if gens is None and args.symmetry not in FIXED_SOURCES:
        gens = default_generators_path(args.results, cfg["task"], args.symmetry, args.seed)
    res = run_downstream(cfg, args.model, args.symmetry, args.seed, args.data, gens, args.out, ctx)
    got = {r["split"]: r["value"] for r in res["rows"] if r["metric"] == "test_mse"}
    print(f"{cfg['task']}/{args.model}/{args.symmetry}/seed{args.seed}: "
          + " ".join(f"{s}={got[s]:.3g}" for s in SPLITS) + f" in {res['run_seconds']:.1f} s -> {args.out}",
          file=sys.stderr)


def cmd_downstream_report(args: argparse.Namespace) -> None:
    from .report.downstream import report_downstream

    report_downstream(Path(args.runs), Path(args.out))


def add_parser(subparsers: Any) -> None:
    """Add the `downstream` (one run) and `downstream-report` (tables, figures) subcommands."""
    from .cli import _add_profile, _add_task

    p = subparsers.add_parser("downstream", help="train and test a trajectory predictor with a symmetry")
    _add_task(p, required=True)
    _add_profile(p)
    p.add_argument("--model", choices=MODELS, required=True)
    p.add_argument("--symmetry", default="none",
                   help="none (mlp), true, wrong (downstream.wrong_symmetry) or a discovery method's name")
    p.add_argument("--seed", type=int, default=0, help="training seed (and the discovery run's seed)")
    p.add_argument("--data", help="downstream dataset .npz (default: generate it in-process from the task)")
    p.add_argument("--generators", help="the method's generators.npz (default: under --results)")
    p.add_argument("--results", default="results", help="results folder holding runs/<task>/discover/...")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="overrides the profile's device")
    p.add_argument("--threads", type=int, help="torch threads for this job")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_downstream)

    r = subparsers.add_parser("downstream-report", help="downstream tables and figures from finished runs")
    r.add_argument("--runs", default="results/runs")
    r.add_argument("--out", default="results")
    r.set_defaults(func=cmd_downstream_report)
