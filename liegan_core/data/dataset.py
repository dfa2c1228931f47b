"""The dataset contract: arrays x, y, split indices, how x and y transform, ground truth, provenance.

A dataset file is `<name>.npz` (no pickled objects) plus a `<name>.json` sidecar holding the
representations, metadata and the npz's SHA-256, so any method (or a user without our code) can
read it, and a truncated or corrupted file is caught on load.
"""
from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..io import sha256, write_json, write_npz

REP_TYPES = ("vector", "scalar", "label", "grid")


@dataclass
class Dataset:
    """A symmetry-discovery dataset.

    x: [N, ..., n] when x_rep is a vector (the group acts on the last axis), images [N, C, H, W]
       for a grid; y: likewise, or [N, d] scalars / [N] integer labels, which the group leaves alone.
    splits: split name -> integer indices into the first axis (e.g. "train", "test").
    x_rep, y_rep: {"type": one of REP_TYPES, "n": dimension acted on (vectors), ...}.
    true_algebra: [k, n, n] ground-truth Lie algebra basis where known, else None.
    meta: generator name, parameters, seed, versions, the symmetry of the function and of the data.
    extras: further per-row arrays [N, ...] (e.g. all jet constituents for downstream models);
       stored as `extra_<name>` and sliced with the splits.
    """

    x: np.ndarray
    y: np.ndarray
    splits: dict[str, np.ndarray]
    x_rep: dict[str, Any]
    y_rep: dict[str, Any]
    true_algebra: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_arrays(self.x, self.y, self.x_rep, self.y_rep, source="dataset")
        for name, idx in self.splits.items():
            idx = np.asarray(idx)
            if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
                raise UserError(f"split '{name}' must be a 1-D integer index array, got {idx.dtype} {idx.shape}")
            if idx.size and (idx.min() < 0 or idx.max() >= len(self.x)):
                raise UserError(f"split '{name}' indexes outside 0..{len(self.x) - 1}")

    @property
    def n(self) -> int:
        """Dimension of the vectors the group acts on."""
        return int(self.x_rep.get("n", self.x.shape[-1]))

    def split(self, name: str, with_truth: bool = False) -> "Dataset":
        """The rows of one split; the ground truth is dropped unless asked for (methods never see it)."""
        if name not in self.splits:
            raise UserError(f"dataset has no split '{name}'; it has {sorted(self.splits)}")
        idx = np.asarray(self.splits[name])
        return Dataset(
            x=self.x[idx],
            y=self.y[idx],
            splits={"all": np.arange(idx.size)},
            x_rep=dict(self.x_rep),
            y_rep=dict(self.y_rep),
            true_algebra=self.true_algebra if with_truth else None,
            meta=dict(self.meta),
            extras={k: v[idx] for k, v in self.extras.items()},
        )

    def save(self, path: str | Path) -> None:
        """Write `path` (.npz) and its `.json` sidecar, both atomically; the sidecar goes last."""
        path = Path(path)
        _refuse_foreign_sidecar(path)
        arrays: dict[str, np.ndarray] = {"x": self.x, "y": self.y}
        for name, idx in self.splits.items():
            arrays[f"split_{name}"] = np.asarray(idx, dtype=np.int64)
        if self.true_algebra is not None:
            arrays["true_algebra"] = np.asarray(self.true_algebra, dtype=np.float64)
        for name, arr in self.extras.items():
            arrays[f"extra_{name}"] = arr
        write_npz(path, **arrays)
        sidecar = {
            "format": "liegan_core.dataset/1",
            "x_rep": self.x_rep,
            "y_rep": self.y_rep,
            "splits": {k: int(len(v)) for k, v in self.splits.items()},
            "shapes": {"x": list(self.x.shape), "y": list(self.y.shape)},
            "meta": self.meta,
            "sha256": sha256(path),
        }
        write_json(sidecar_path(path), sidecar)


def sidecar_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def _refuse_foreign_sidecar(path: Path) -> None:
    """A `.json` beside the output that is not a dataset sidecar (say, the user's config) is never overwritten."""
    side = sidecar_path(path)
    if not side.exists():
        return
    try:
        fmt = json.loads(side.read_text()).get("format", "")
    except (OSError, ValueError, AttributeError):
        fmt = ""
    if not str(fmt).startswith("liegan_core.dataset"):
        raise UserError(f"{path}: writing it would overwrite {side}, which is not a dataset sidecar; "
                        "choose another output name")


def load(path: str | Path, verify: bool = True) -> Dataset:
    """Load a dataset written by `Dataset.save`, checking its checksum against the sidecar."""
    path = Path(path)
    side = sidecar_path(path)
    if not path.exists():
        raise UserError(f"{path}: dataset file not found")
    if not side.exists():
        raise UserError(f"{path}: sidecar {side.name} is missing; re-run `liegan generate` to rebuild it")
    try:
        info = json.loads(side.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{side}: sidecar is not valid JSON ({e}); re-run `liegan generate`") from e
    if verify and sha256(path) != info.get("sha256"):
        raise UserError(
            f"{path}: checksum does not match its sidecar (file corrupted or truncated); "
            "delete it and re-run `liegan generate` (or the pipeline) to rebuild it"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # zip/np errors: a truncated file
        raise UserError(f"{path}: cannot read dataset ({e}); delete it and regenerate") from e
    splits = {k[len("split_"):]: v for k, v in arrays.items() if k.startswith("split_")}
    return Dataset(
        x=arrays["x"],
        y=arrays["y"],
        splits=splits,
        x_rep=info["x_rep"],
        y_rep=info["y_rep"],
        true_algebra=arrays.get("true_algebra"),
        meta=info.get("meta", {}),
        extras={k[len("extra_"):]: v for k, v in arrays.items() if k.startswith("extra_")},
    )


def validate_arrays(x: np.ndarray, y: np.ndarray, x_rep: dict, y_rep: dict, source: str) -> None:
    """Check shapes, dtypes and finiteness; messages name the array and the first bad row."""
    for name, arr, rep in (("x", x, x_rep), ("y", y, y_rep)):
        kind = rep.get("type")
        if kind not in REP_TYPES:
            raise UserError(f"{source}: {name} representation type '{kind}' unknown; expected one of {REP_TYPES}")
        if not isinstance(arr, np.ndarray) or arr.dtype == object:
            raise UserError(f"{source}: array '{name}' must be a numeric array, got {getattr(arr, 'dtype', type(arr))}")
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise UserError(f"{source}: array '{name}' has dtype {arr.dtype}; expected float or int")
        if arr.ndim == 0 or arr.shape[0] == 0:
            raise UserError(f"{source}: array '{name}' is empty (shape {arr.shape})")
        if np.issubdtype(arr.dtype, np.floating):
            bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
            if bad.any():
                raise UserError(
                    f"{source}: array '{name}' has non-finite values (NaN or inf) in row {int(np.argmax(bad))} "
                    f"({int(bad.sum())} rows in all)"
                )
        if kind == "vector":
            n = rep.get("n", arr.shape[-1])
            if arr.ndim < 2 or arr.shape[-1] != n:
                raise UserError(f"{source}: array '{name}' is declared a vector of dimension {n} but has shape {arr.shape}")
        if kind == "label" and not np.issubdtype(arr.dtype, np.integer):
            raise UserError(f"{source}: array '{name}' holds class labels and must be integers, got {arr.dtype}")
    if x.shape[0] != y.shape[0]:
        raise UserError(f"{source}: x has {x.shape[0]} rows but y has {y.shape[0]}")


def provenance(generator: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """Metadata recorded with every generated dataset."""
    import scipy
    import torch

    from .. import __version__

    return {
        "generator": generator,
        "params": params,
        "seed": seed,
        "versions": {
            "liegan_core": __version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }
