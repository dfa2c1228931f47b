"""Rotated handwritten digits (the paper's rotated-MNIST task) and an MNIST IDX reader.

Image-plane convention, shared with any method that transforms images: a point of the image has
normalised coordinates (x, y) in [-1, 1]^2 with x pointing right and y pointing UP (row 0 is the
top, y = +1), pixel centres as in torch's align_corners=False, and homogeneous form (x, y, 1).
A 3x3 affine element g acts on an image I by (g . I)(p) = I(g^-1 p): the content at p moves to
g p. With the affine rotation generator J = [[0, -1], [1, 0]] (lie.affine_basis()[2]),
exp(a J) therefore rotates the picture counter-clockwise by a, as it appears on screen.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError
from ..lie import affine_basis
from . import register_generator
from .dataset import Dataset, provenance
from .synthetic import positive_int, random_splits, resolve_params

IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
CHUNK = 4096  # images per grid_sample call, to bound memory on MNIST-sized inputs


def warp_images(images: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """(g . I)(p) = I(g^-1 p) for images [B, C, H, W] and affine elements g [B, 3, 3] (bilinear, zero fill).

    Differentiable in g. Only the top two rows of g^-1 are used, i.e. g is taken as affine.
    """
    flip = torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=images.dtype, device=images.device))
    # Conjugating by flip turns the y-up convention into grid_sample's y-down (row) coordinates.
    theta = (flip @ torch.linalg.inv(g.to(images.dtype)) @ flip)[:, :2, :]
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def rotation_elements(angles: torch.Tensor) -> torch.Tensor:
    """exp(a J) [B, 3, 3] for angles a [B] in radians, J the affine rotation generator."""
    gen = torch.as_tensor(affine_basis()[2], dtype=angles.dtype, device=angles.device)
    return torch.linalg.matrix_exp(angles[:, None, None] * gen)


def rotate_images(images: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate images [B, C, H, W] counter-clockwise by angles [B] (radians)."""
    return warp_images(images, rotation_elements(angles))


def _read_idx(path: str | Path, magic: int, ndim: int, what: str) -> np.ndarray:
    """One IDX file of unsigned bytes (gzip or raw), checked against its magic number and header sizes."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: MNIST {what} file not found")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise UserError(f"{path}: cannot decompress gzip MNIST {what} file ({e}); download it again") from e
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"{path}: {len(raw)} bytes is too short for an IDX {what} header ({header} bytes)")
    got = int.from_bytes(raw[:4], "big")
    if got != magic:
        raise UserError(
            f"{path}: IDX magic number is {got}, expected {magic} for MNIST {what}; "
            "is this the right file (images 2051, labels 2049)?"
        )
    dims = [int(d) for d in np.frombuffer(raw[4:header], dtype=">u4")]
    size = int(np.prod(dims))
    if len(raw) - header != size:
        raise UserError(
            f"{path}: header says {what} of shape {dims} ({size} bytes) but the file holds "
            f"{len(raw) - header} bytes after it (truncated or corrupted)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def load_mnist_idx(images_path: str | Path, labels_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read MNIST IDX files -> images uint8 [N, rows, cols], labels int64 [N] in 0..9."""
    images = _read_idx(images_path, IDX_IMAGES_MAGIC, 3, "images")
    labels = _read_idx(labels_path, IDX_LABELS_MAGIC, 1, "labels").astype(np.int64)
    if len(images) != len(labels):
        raise UserError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise UserError(f"{labels_path}: label {int(labels.max())} outside 0..9")
    return images, labels


def _source(p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, str]:
    """Grey images [M, h, w] in [0, 1] (float64), labels int64 [M], and where they came from."""
    paths = (p["mnist_images"], p["mnist_labels"])
    if any(paths):
        if not all(paths):
            raise UserError("data.params.mnist_images and mnist_labels must be given together")
        images, labels = load_mnist_idx(*paths)
        return images / 255.0, labels, "mnist_idx"
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserError(
            "the rotated_digits generator needs scikit-learn (for its bundled digits): pip install -e .[digits]"
        ) from None
    digits = load_digits()
    return digits.images / 16.0, digits.target.astype(np.int64), "sklearn.datasets.load_digits"


def _render(images: np.ndarray, angles_deg: np.ndarray, size: int) -> np.ndarray:
    """Upsample [N, h, w] to size x size (bilinear) and rotate each by its angle -> float32 [N, 1, size, size]."""
    out = np.empty((len(images), 1, size, size), dtype=np.float32)
    for start in range(0, len(images), CHUNK):
        block = torch.from_numpy(images[start : start + CHUNK, None].astype(np.float64))
        block = F.interpolate(block, size=(size, size), mode="bilinear", align_corners=False)
        angles = torch.from_numpy(np.radians(angles_deg[start : start + CHUNK]))
        out[start : start + CHUNK] = rotate_images(block, angles).numpy()
    return out


DIGITS_DEFAULTS: dict[str, Any] = {
    "upsample_size": 28,
    "max_angle_deg": 45.0,
    "n_samples": None,
    "test_fraction": 0.2,
    "mnist_images": None,
    "mnist_labels": None,
}


@register_generator("rotated_digits")
def rotated_digits(params: dict[str, Any], seed: int) -> Dataset:
    """Handwritten digits, upsampled and each rotated by an angle uniform in +-max_angle_deg.

    Images come from sklearn's bundled 8x8 digits (1797), or from MNIST IDX files when
    params mnist_images/mnist_labels are given. n_samples None takes every image once; a
    number draws that many (with replacement if more than there are), each with its own angle.
    """
    name = "rotated_digits"
    p = resolve_params(name, params, DIGITS_DEFAULTS)
    size = positive_int(name, p, "upsample_size")
    max_angle = float(p["max_angle_deg"])
    if not 0.0 <= max_angle <= 180.0:
        raise UserError(f"data.params.max_angle_deg must be in [0, 180], got {p['max_angle_deg']!r}")
    images, labels, source = _source(p)
    rng = np.random.default_rng(seed)
    if p["n_samples"] is None:
        idx = np.arange(len(images))
    else:
        n = positive_int(name, p, "n_samples")
        idx = rng.choice(len(images), n, replace=n > len(images))
    angles = rng.uniform(-max_angle, max_angle, len(idx))
    x = _render(images[idx], angles, size)
    meta = provenance(name, p, seed)
    meta.update(
        source=source,
        symmetry_function="labels invariant under small rotations (not all: a 6 turned by 180 deg reads 9)",
        symmetry_data=f"rotations up to +-{max_angle:g} deg: a symmetry of the distribution only locally",
        image_convention="x right, y up, normalised to [-1, 1]; (g . I)(p) = I(g^-1 p); exp(aJ) is counter-clockwise",
    )
    return Dataset(
        x=x,
        y=labels[idx],
        splits=random_splits(len(idx), p["test_fraction"], rng),
        x_rep={"type": "grid", "n": 3, "height": size, "width": size},
        y_rep={"type": "label", "classes": 10},
        true_algebra=affine_basis()[2:3],
        meta=meta,
    )
