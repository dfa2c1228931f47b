"""Figures with one consistent seaborn style, saved as PNG and PDF.

Every figure `aggregate.figures_for` lists is always written, with a short note in place of the
plot where there is nothing to draw (e.g. a method without a training loop), so that the files a
pipeline declares always exist.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ..io import atomic_path  # noqa: E402
from .tables import method_order  # noqa: E402

CURVE_PREFIXES = ("loss", "regulariser")


def style() -> None:
    """The suite's figure style: seaborn 'paper' context on a white grid."""
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def save(fig: plt.Figure, path_stem: Path) -> None:
    """Write path_stem.png and .pdf atomically."""
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    for ext in ("png", "pdf"):
        with atomic_path(path_stem.with_suffix(f".{ext}")) as tmp:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight")
    plt.close(fig)


def placeholder(path_stem: Path, title: str, message: str) -> None:
    """A small figure that says why there is no plot."""
    fig, ax = plt.subplots(figsize=(4.5, 1.6), layout="constrained")
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    ax.set_title(title)
    save(fig, path_stem)


def align(learned: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Scale a learned generator [n, n] to unit norm with the sign that best matches the reference [n, n]."""
    g = learned / (np.linalg.norm(learned) or 1.0)
    return -g if float((g * reference).sum()) < 0 else g


def _truth(data_dir: Path, task: str) -> np.ndarray | None:
    """The task's ground-truth algebra [k, n, n] from its dataset, if stored."""
    path = data_dir / f"{task}.npz"
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        return z["true_algebra"] if "true_algebra" in z.files else None


def generator_heatmaps(task: str, method: str, runs: list[dict[str, Any]], truth: np.ndarray | None, out: Path) -> None:
    """Each seed's learned generators [c, n, n] (unit norm, sign-aligned) beside the truth [k, n, n]."""
    runs = sorted(runs, key=lambda r: r["seed"])
    stem = out / f"generators_{task}_{method}"
    panels = [("true", t / np.linalg.norm(t)) for t in truth] if truth is not None else []
    ref = truth[0] / np.linalg.norm(truth[0]) if truth is not None else None
    learned = []
    for r in runs:
        gens = np.asarray(r["generators_rounded"], dtype=float)
        for c, g in enumerate(gens if gens.ndim == 3 else []):
            unit = align(g, ref) if ref is not None and ref.shape == g.shape else g / (np.linalg.norm(g) or 1.0)
            learned.append((f"seed {r['seed']} L{c + 1}", unit))
    if not learned:
        placeholder(stem, f"{task}: {method}", "no generators learned (empty generator set)")
        return
    panels += learned
    cols = min(len(panels), 6)
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows + 0.4), squeeze=False, layout="constrained")
    vmax = max(float(np.abs(p).max()) for _, p in panels) or 1.0
    for ax, (title, mat) in zip(axes.flat, panels):
        # imshow, not sns.heatmap: heatmap redraws the whole figure per panel (quadratic in panels)
        ax.imshow(mat, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        ax.set_title(title, fontsize=9)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"{task}: {method} generators (unit norm, sign aligned) vs ground truth")
    save(fig, stem)


def similarity_per_seed(task: str, tidy: pd.DataFrame, summary: pd.DataFrame, out: Path) -> None:
    """Algebra similarity per seed (points) with each method's mean and 95% interval (bars), one task.

    tidy: result rows (aggregate.collect_runs); summary: aggregate.summary_table, whose bootstrap
    intervals are drawn, so that the figure and the tables agree.
    """
    stem = out / f"similarity_{task}"
    sim = tidy[(tidy.task == task) & (tidy.metric == "algebra_similarity") & (tidy.model == "")]
    if sim.empty:
        placeholder(stem, f"{task}: similarity per seed", "no ground-truth algebra: similarity not measured")
        return
    order = method_order(list(sim.method))
    stats = summary[(summary.task == task) & (summary.metric == "algebra_similarity") & (summary.model == "")]
    stats = stats.set_index("method").loc[order]
    fig, ax = plt.subplots(figsize=(2.4 + 1.1 * len(order), 3.4), layout="constrained")
    sns.stripplot(data=sim, x="method", y="value", order=order, hue="seed", palette="deep", size=6,
                  jitter=0.15, ax=ax, zorder=1)
    x = np.arange(len(order))
    ax.errorbar(x, stats["mean"], yerr=[stats["mean"] - stats.ci_low, stats.ci_high - stats["mean"]],
                fmt="_", color="black", markersize=18, capsize=5, linewidth=1.2, zorder=2, label="mean, 95% CI")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("method")
    ax.set_ylabel("algebra similarity (1 = true algebra)")
    ax.set_title(f"{task}: similarity per seed")
    ax.legend(fontsize=7, title="seed", title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save(fig, stem)


def _training_log(run: dict[str, Any]) -> pd.DataFrame:
    """A run's log.csv in long form [rows: epoch, quantity, value, seed], losses and regularisers only."""
    path = Path(run["path"]) / "log.csv"
    log = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["epoch"])
    curves = [c for c in log.columns if c.startswith(CURVE_PREFIXES)]
    long = log.melt(id_vars="epoch", value_vars=curves, var_name="quantity", value_name="value")
    return long.assign(seed=run["seed"])


def training_curves(task: str, method: str, runs: list[dict[str, Any]], out: Path) -> None:
    """Losses and regularisers over epochs (one panel each): the mean over seeds and the band from
    the lowest to the highest seed, from each run's log.csv."""
    stem = out / f"training_{task}_{method}"
    logs = pd.concat([_training_log(r) for r in runs], ignore_index=True) if runs else pd.DataFrame()
    if logs.empty:
        placeholder(stem, f"{task}: {method} training", "nothing logged per epoch (no training loop)")
        return
    quantities = list(dict.fromkeys(logs.quantity))
    cols = min(len(quantities), 3)
    rows = int(np.ceil(len(quantities) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows + 0.4), squeeze=False, sharex=True,
                             layout="constrained")
    bands = logs.groupby(["quantity", "epoch"]).value.agg(["mean", "min", "max"])
    for ax, q in zip(axes.flat, quantities):
        band = bands.loc[q]
        ax.plot(band.index, band["mean"], color="C0")
        ax.fill_between(band.index, band["min"], band["max"], color="C0", alpha=0.25, linewidth=0)
        ax.set_xlabel("epoch")
        ax.set_title(q, fontsize=9)
        ax.set_ylabel("")
    for ax in list(axes.flat)[len(quantities):]:
        ax.axis("off")
    seeds = ", ".join(str(s) for s in sorted({r["seed"] for r in runs}))
    fig.suptitle(f"{task}: {method} training (mean over seeds {seeds}; band: min to max)")
    save(fig, stem)


def resources(task: str, runs: list[dict[str, Any]], out: Path) -> None:
    """Run time (s) and peak resident memory (MB) per method for one task: mean (bar) and each seed (points)."""
    frame = pd.DataFrame([{"method": r["method"], "seed": r["seed"], "run time (s)": r["run_seconds"],
                           "peak memory (MB)": r["peak_memory_mb"]} for r in runs])
    order = method_order(list(frame.method))
    fig, axes = plt.subplots(1, 2, figsize=(2.0 + 2.0 * len(order), 3.4), layout="constrained")
    for ax, col in zip(axes, ("run time (s)", "peak memory (MB)")):
        sns.barplot(data=frame, x="method", y=col, order=order, errorbar=None, color="0.85", ax=ax)
        sns.stripplot(data=frame, x="method", y=col, order=order, color="black", size=4, jitter=0.1, ax=ax)
        ax.set_xlabel("")
        ax.tick_params(axis="x", rotation=30)
    axes[0].set_title("fitting time per run")
    axes[1].set_title("peak resident memory per run")
    fig.suptitle(f"{task}: cost per discovery run")
    save(fig, out / f"resources_{task}")


def _draw(job: tuple[Callable[..., None], tuple[Any, ...]]) -> None:
    """Draw one figure (a pool worker's unit of work; the style is set once per process)."""
    func, args = job
    func(*args)


def discovery_figures(tidy: pd.DataFrame, summary: pd.DataFrame, runs: list[dict[str, Any]], out: Path,
                      data_dir: Path, jobs: int = 1) -> None:
    """Every discovery figure (aggregate.figures_for) for the tasks and methods among `runs`.

    jobs > 1 draws them in that many processes: saving ~80 figures as PNG and PDF is most of
    `aggregate`'s time, and each figure is independent of the others.
    """
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        by_key.setdefault((r["task"], r["method"]), []).append(r)
    work: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
    for task in sorted({task for task, _ in by_key}):
        work.append((similarity_per_seed, (task, tidy, summary, out)))
        work.append((resources, (task, [r for r in runs if r["task"] == task], out)))
    for (task, method), rs in sorted(by_key.items()):
        work.append((generator_heatmaps, (task, method, rs, _truth(data_dir, task), out)))
        work.append((training_curves, (task, method, rs, out)))
    if jobs <= 1:
        style()
        for job in work:
            _draw(job)
        return
    with ProcessPoolExecutor(max_workers=jobs, initializer=style) as pool:
        list(pool.map(_draw, work))  # list(): a worker's exception is raised here
