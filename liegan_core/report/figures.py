"""Figures with one consistent seaborn style, saved as PNG and PDF."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ..io import atomic_path  # noqa: E402


def style() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def save(fig: plt.Figure, path_stem: Path) -> None:
    """Write path_stem.png and .pdf atomically."""
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    for ext in ("png", "pdf"):
        with atomic_path(path_stem.with_suffix(f".{ext}")) as tmp:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight")
    plt.close(fig)


def align(learned: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Scale a learned generator to unit norm with the sign that best matches the reference."""
    g = learned / (np.linalg.norm(learned) or 1.0)
    return -g if float((g * reference).sum()) < 0 else g


def _truth(data_dir: Path, task: str) -> np.ndarray | None:
    path = data_dir / f"{task}.npz"
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        return z["true_algebra"] if "true_algebra" in z.files else None


def generator_heatmaps(task: str, method: str, runs: list[dict[str, Any]], truth: np.ndarray | None, out: Path) -> None:
    """Each seed's learned generators (normalised, sign-aligned) beside the ground truth."""
    runs = sorted(runs, key=lambda r: r["seed"])
    gens = [np.asarray(r["generators_rounded"]) for r in runs]
    channels = max((g.shape[0] for g in gens), default=0)
    if channels == 0:
        return
    panels = ([("true", t / np.linalg.norm(t)) for t in truth] if truth is not None else [])
    ref = truth[0] / np.linalg.norm(truth[0]) if truth is not None else None
    for r, g in zip(runs, gens):
        for c in range(g.shape[0]):
            panels.append((f"seed {r['seed']} L{c + 1}", align(g[c], ref) if ref is not None and ref.shape == g[c].shape else g[c] / (np.linalg.norm(g[c]) or 1)))
    cols = min(len(panels), 6)
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), squeeze=False)
    vmax = max(float(np.abs(p).max()) for _, p in panels)
    for ax, (title, mat) in zip(axes.flat, panels):
        sns.heatmap(mat, ax=ax, cmap="RdBu_r", vmin=-vmax, vmax=vmax, cbar=False, square=True,
                    xticklabels=False, yticklabels=False)
        ax.set_title(title, fontsize=9)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"{task}: {method} generators (unit norm, sign aligned) vs ground truth")
    save(fig, out / f"generators_{task}_{method}")


def similarity_per_seed(tidy: pd.DataFrame, out: Path) -> None:
    """Algebra similarity per seed (points) with the mean and 95% interval per method, per task."""
    sim = tidy[tidy.metric == "algebra_similarity"]
    for task, grp in sim.groupby("task"):
        fig, ax = plt.subplots(figsize=(1.2 + 1.1 * grp.method.nunique(), 3.2))
        order = sorted(grp.method.unique())
        sns.pointplot(data=grp, x="method", y="value", order=order, errorbar=("ci", 95), linestyle="none",
                      color="black", markers="_", capsize=0.2, ax=ax, seed=0)
        sns.stripplot(data=grp, x="method", y="value", order=order, hue="seed", palette="deep", size=6,
                      jitter=0.15, ax=ax)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("algebra similarity (1 = true algebra)")
        ax.set_title(f"{task}: similarity per seed")
        ax.legend(title="seed", fontsize=7, loc="lower right")
        save(fig, out / f"similarity_{task}")


def discovery_figures(tidy: pd.DataFrame, runs: list[dict[str, Any]], out: Path, data_dir: Path) -> None:
    style()
    similarity_per_seed(tidy, out)
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        by_key.setdefault((r["task"], r["method"]), []).append(r)
    for (task, method), rs in sorted(by_key.items()):
        generator_heatmaps(task, method, rs, _truth(data_dir, task), out)
