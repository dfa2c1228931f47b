"""Rotated digits: shapes, determinism, the image-plane rotation convention, and the MNIST IDX reader."""
from __future__ import annotations

import gzip
import importlib.util
import sys

import numpy as np
import pytest
import torch

from liegan_core.data import digits as dg
from liegan_core.errors import UserError
from liegan_core.lie import affine_basis, expm

needs_sklearn = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn not installed")
SMALL = {"n_samples": 200, "upsample_size": 16}


@needs_sklearn
def test_shapes_dtypes_meta() -> None:
    ds = dg.rotated_digits(SMALL, 0)
    assert ds.x.shape == (200, 1, 16, 16) and ds.x.dtype == np.float32
    assert ds.y.shape == (200,) and ds.y.dtype == np.int64 and set(np.unique(ds.y)) <= set(range(10))
    assert ds.x.min() >= 0.0 and ds.x.max() <= 1.0 + 1e-6 and ds.x.max() > 0.5
    assert ds.x_rep == {"type": "grid", "n": 3, "height": 16, "width": 16}
    assert ds.y_rep == {"type": "label", "classes": 10}
    np.testing.assert_array_equal(ds.true_algebra, affine_basis()[2:3])
    assert len(ds.splits["test"]) == 40 and ds.splits["train"].dtype == np.int64
    assert ds.meta["source"] == "sklearn.datasets.load_digits" and "45" in ds.meta["symmetry_data"]


@needs_sklearn
def test_default_takes_every_digit_once_at_28() -> None:
    ds = dg.rotated_digits({"max_angle_deg": 0.0}, 0)
    assert ds.x.shape == (1797, 1, 28, 28)
    from sklearn.datasets import load_digits

    np.testing.assert_array_equal(ds.y, load_digits().target)


@needs_sklearn
def test_deterministic_in_seed() -> None:
    a, b, c = (dg.rotated_digits(SMALL, s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)


def blob(size: int, cx: float, cy: float, width: float = 0.15) -> torch.Tensor:
    """A Gaussian blob [1, 1, size, size] centred at (cx, cy) in the y-up normalised convention."""
    c = (torch.arange(size, dtype=torch.float64) + 0.5) / size * 2 - 1
    ys, xs = -c[:, None], c[None, :]
    return torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * width**2))[None, None]


def centroid(img: torch.Tensor) -> np.ndarray:
    """Mass centroid (x, y) of [1, 1, H, W] in the y-up normalised convention."""
    size = img.shape[-1]
    c = (torch.arange(size, dtype=torch.float64) + 0.5) / size * 2 - 1
    w = img[0, 0].double()
    return np.array([float((w * c[None, :]).sum() / w.sum()), float((w * -c[:, None]).sum() / w.sum())])


def test_quarter_turn_is_counter_clockwise_with_affine_generator() -> None:
    img = blob(32, 0.5, 0.0)
    out = dg.rotate_images(img, torch.tensor([np.pi / 2], dtype=torch.float64))
    # mass on the right moves to the top: rows in the upper half, centred columns
    rows = out[0, 0].sum(dim=1)
    assert rows[:16].sum() > 0.99 * rows.sum()
    g = expm(np.pi / 2 * affine_basis()[2])
    np.testing.assert_allclose(centroid(out), (g @ [0.5, 0.0, 1.0])[:2], atol=1e-3)
    np.testing.assert_allclose(centroid(out), [0.0, 0.5], atol=1e-3)


def test_warp_matches_lie_exponential_for_translation_and_rotation() -> None:
    img = blob(32, 0.3, -0.2, width=0.1)
    alg = 0.2 * affine_basis()[0] - 0.1 * affine_basis()[1] + 0.7 * affine_basis()[2]
    g = expm(alg)
    out = dg.warp_images(img, torch.from_numpy(g)[None])
    np.testing.assert_allclose(centroid(out), (g @ [0.3, -0.2, 1.0])[:2], atol=2e-3)


def test_rotate_there_and_back_recovers_interior() -> None:
    img = blob(28, 0.1, -0.15, width=0.25) + 0.5 * blob(28, -0.2, 0.2, width=0.2)
    a = torch.tensor([0.6], dtype=torch.float64)
    back = dg.rotate_images(dg.rotate_images(img, a), -a)
    inner = slice(7, 21)
    err = (back - img)[0, 0, inner, inner].abs().max()
    assert err < 0.03


def write_idx(path, magic: int, arr: np.ndarray, compress: bool) -> None:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip_and_mnist_option(tmp_path, compress: bool) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 12, dtype=np.uint8)
    ip, lp = tmp_path / "img.idx", tmp_path / "lab.idx"
    write_idx(ip, 2051, images, compress)
    write_idx(lp, 2049, labels, compress)
    got_images, got_labels = dg.load_mnist_idx(ip, lp)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert got_labels.dtype == np.int64
    ds = dg.rotated_digits({"mnist_images": str(ip), "mnist_labels": str(lp), "max_angle_deg": 0.0}, 0)
    assert ds.meta["source"] == "mnist_idx" and ds.x.shape == (12, 1, 28, 28)
    np.testing.assert_allclose(ds.x[:, 0], images / 255.0, atol=1e-6)  # 28 -> 28, angle 0: unchanged


def test_bad_idx_files_are_user_errors(tmp_path) -> None:
    images = np.zeros((3, 4, 4), dtype=np.uint8)
    labels = np.zeros(3, dtype=np.uint8)
    ip, lp = tmp_path / "img", tmp_path / "lab"
    write_idx(ip, 2051, images, False)
    write_idx(lp, 2049, labels, False)
    with pytest.raises(UserError, match="magic number is 2051, expected 2049"):
        dg.load_mnist_idx(lp.parent / "img", ip)
    ip.write_bytes(ip.read_bytes()[:-5])
    with pytest.raises(UserError, match="truncated"):
        dg.load_mnist_idx(ip, lp)
    write_idx(ip, 2051, images, False)
    write_idx(lp, 2049, np.zeros(4, dtype=np.uint8), False)
    with pytest.raises(UserError, match="3 images but"):
        dg.load_mnist_idx(ip, lp)
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"x" * 100)[:20])
    with pytest.raises(UserError, match="gzip"):
        dg.load_mnist_idx(tmp_path / "bad.gz", lp)
    with pytest.raises(UserError, match="not found"):
        dg.load_mnist_idx(tmp_path / "missing", lp)
    with pytest.raises(UserError, match="together"):
        dg.rotated_digits({"mnist_images": str(ip)}, 0)


def test_missing_sklearn_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(UserError, match=r"pip install -e \.\[digits\]"):
        dg.rotated_digits(SMALL, 0)
