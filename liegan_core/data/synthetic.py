"""Synthetic tasks whose symmetry is known exactly: of the function, and separately of the data.

LieGAN learns the symmetry of the joint distribution p(x, y), i.e. transformations that keep the
input distribution *and* the input-output relation. Each generator therefore records both
`symmetry_function` and `symmetry_data` in its meta; `true_algebra` is the function's symmetry,
and where the data's symmetry is a proper subalgebra its name is stored as `meta["data_algebra"]`
(resolve it with `data_algebra(name)`), so tables can say which one a score is measured against.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import UserError
from ..lie import minkowski_metric, so13_basis, so_basis
from . import register_generator
from .dataset import Dataset, provenance

DATA_ALGEBRAS: dict[str, Callable[[], np.ndarray]] = {
    "so3_in_so13": lambda: so13_basis()[3:],
}


def data_algebra(name: str) -> np.ndarray:
    """A named data-level algebra [k, n, n], e.g. "so3_in_so13": the rotations inside so(1,3)."""
    if name not in DATA_ALGEBRAS:
        raise UserError(f"unknown data algebra '{name}'; known: {sorted(DATA_ALGEBRAS)}")
    return DATA_ALGEBRAS[name]()


def resolve_params(generator: str, params: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """defaults overridden by params; an unknown key is a UserError (catches typos in a YAML)."""
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise UserError(f"data.params for generator '{generator}': unknown key(s) {unknown}; known: {sorted(defaults)}")
    return {**defaults, **params}


def positive_int(generator: str, p: dict[str, Any], key: str) -> int:
    value = p[key]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UserError(f"data.params.{key} for generator '{generator}' must be a positive integer, got {value!r}")
    return int(value)


def value_range(generator: str, p: dict[str, Any], key: str, positive: bool = False) -> tuple[float, float]:
    """A [low, high] pair with low < high (and low > 0 when `positive`)."""
    value = p[key]
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise UserError(f"data.params.{key} for generator '{generator}' must be [low, high], got {value!r}") from None
    if not lo < hi or (positive and lo <= 0):
        bound = "0 < low < high" if positive else "low < high"
        raise UserError(f"data.params.{key} for generator '{generator}' must satisfy {bound}, got {value!r}")
    return lo, hi


def random_splits(n: int, test_fraction: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random train/test index arrays (sorted, int64), both non-empty."""
    if not 0.0 < float(test_fraction) < 1.0:
        raise UserError(f"data.params.test_fraction must be in (0, 1), got {test_fraction!r}")
    n_test = int(round(float(test_fraction) * n))
    if not 0 < n_test < n:
        raise UserError(f"test_fraction {test_fraction} of {n} samples leaves an empty train or test split")
    perm = rng.permutation(n)
    return {"train": np.sort(perm[n_test:]).astype(np.int64), "test": np.sort(perm[:n_test]).astype(np.int64)}


def discrete_rotation_function(x: np.ndarray, k: int) -> np.ndarray:
    """y = x3 / (1 + (atan2(x2, x1) mod 2 pi / k)) for x [..., 3]: invariant under C_k about x3 only."""
    phase = np.mod(np.arctan2(x[..., 1], x[..., 0]), 2 * np.pi / k)
    return x[..., 2] / (1.0 + phase)


def so3_function(x: np.ndarray) -> np.ndarray:
    """y = sin(|x|) + |x|^2 / 4 for x [..., 3]: radial, so SO(3)- (indeed O(3)-) invariant."""
    r = np.linalg.norm(x, axis=-1)
    return np.sin(r) + r**2 / 4.0


def invariant_mass(p: np.ndarray) -> np.ndarray:
    """sqrt((p1 + p2)^2) in the metric diag(1, -1, -1, -1) for four-momenta p [..., 2, 4] (E, px, py, pz)."""
    total = p.sum(axis=-2)
    s = np.einsum("...i,ij,...j->...", total, minkowski_metric(), total)
    return np.sqrt(np.maximum(s, 0.0))


def angle_function(x: np.ndarray) -> np.ndarray:
    """y = cos(2 theta) = (x1^2 - x2^2) / |x|^2 for x [..., 2]: depends on the angle only."""
    sq = x**2
    return (sq[..., 0] - sq[..., 1]) / (sq[..., 0] + sq[..., 1])


def _dataset(
    x: np.ndarray, y: np.ndarray, p: dict[str, Any], rng: np.random.Generator, n: int, algebra: np.ndarray,
    meta: dict[str, Any],
) -> Dataset:
    return Dataset(
        x=x,
        y=y[:, None],
        splits=random_splits(len(x), p["test_fraction"], rng),
        x_rep={"type": "vector", "n": n},
        y_rep={"type": "scalar"},
        true_algebra=algebra,
        meta=meta,
    )


DISCRETE_ROTATION_DEFAULTS: dict[str, Any] = {"n_samples": 20000, "k": 7, "test_fraction": 0.2}


@register_generator("discrete_rotation")
def discrete_rotation(params: dict[str, Any], seed: int) -> Dataset:
    """The paper's discrete-rotation regression: x ~ N(0, I_3), y = x3 / (1 + (theta mod 2 pi / k))."""
    name = "discrete_rotation"
    p = resolve_params(name, params, DISCRETE_ROTATION_DEFAULTS)
    n, k = positive_int(name, p, "n_samples"), positive_int(name, p, "k")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    meta = provenance(name, p, seed)
    meta.update(
        symmetry_function=f"C{k} rotations about x3",
        symmetry_data=f"C{k} (the input distribution is SO(2)-invariant about x3, the function only C{k})",
        discrete_step=2 * np.pi / k,
    )
    # so_basis(3)[0] is the (x1, x2)-plane generator: rotations about x3, whose exp(2 pi / k) is in C_k.
    return _dataset(x, discrete_rotation_function(x, k), p, rng, 3, so_basis(3)[0:1], meta)


SO3_DEFAULTS: dict[str, Any] = {"n_samples": 20000, "test_fraction": 0.2}


@register_generator("so3_invariant")
def so3_invariant(params: dict[str, Any], seed: int) -> Dataset:
    """x ~ N(0, I_3) (an SO(3)-invariant law), y = sin(|x|) + |x|^2 / 4: function and data share SO(3)."""
    name = "so3_invariant"
    p = resolve_params(name, params, SO3_DEFAULTS)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((positive_int(name, p, "n_samples"), 3))
    meta = provenance(name, p, seed)
    meta.update(
        symmetry_function="SO(3) (y = sin|x| + |x|^2/4 is radial)",
        symmetry_data="SO(3) (standard normal inputs)",
    )
    return _dataset(x, so3_function(x), p, rng, 3, so_basis(3), meta)


LORENTZ_DEFAULTS: dict[str, Any] = {
    "n_samples": 20000,
    "mass_range": [0.1, 1.0],
    "momentum_shape": 2.0,
    "momentum_scale": 1.0,
    "test_fraction": 0.2,
}


@register_generator("lorentz_invariant")
def lorentz_invariant(params: dict[str, Any], seed: int) -> Dataset:
    """Pairs of on-shell four-momenta x [N, 2, 4] with isotropic 3-momenta, y = the pair's invariant mass.

    Masses are uniform in mass_range, |p| ~ Gamma(momentum_shape, momentum_scale), directions
    uniform on the sphere, E = sqrt(m^2 + |p|^2). The function is Lorentz-invariant, but a boost
    changes the momentum distribution, so the joint distribution is only rotation-invariant.
    """
    name = "lorentz_invariant"
    p = resolve_params(name, params, LORENTZ_DEFAULTS)
    n = positive_int(name, p, "n_samples")
    m_lo, m_hi = value_range(name, p, "mass_range")
    if m_lo < 0:
        raise UserError(f"data.params.mass_range for generator '{name}' must be non-negative, got {p['mass_range']!r}")
    shape, scale = float(p["momentum_shape"]), float(p["momentum_scale"])
    if shape <= 0 or scale <= 0:
        raise UserError(f"data.params.momentum_shape and momentum_scale for '{name}' must be positive")
    rng = np.random.default_rng(seed)
    mass = rng.uniform(m_lo, m_hi, (n, 2))
    direction = rng.standard_normal((n, 2, 3))
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    momentum = rng.gamma(shape, scale, (n, 2, 1)) * direction
    energy = np.sqrt(mass**2 + (momentum**2).sum(axis=-1))
    x = np.concatenate([energy[..., None], momentum], axis=-1)
    meta = provenance(name, p, seed)
    meta.update(
        symmetry_function="SO(1,3)+",
        symmetry_data="SO(3) rotations only (boosts change the momentum distribution)",
        data_algebra="so3_in_so13",
    )
    return _dataset(x, invariant_mass(x), p, rng, 4, so13_basis(), meta)


SCALING_DEFAULTS: dict[str, Any] = {"n_samples": 20000, "radius_range": [0.1, 10.0], "test_fraction": 0.2}


@register_generator("scaling_invariant")
def scaling_invariant(params: dict[str, Any], seed: int) -> Dataset:
    """A non-compact symmetry: x in R^2 with log-uniform radius and uniform angle, y = cos(2 theta).

    The dilation x -> s x keeps y and shifts log|x| by log s, so the data law is scale-invariant
    only where the shifted log-radius interval overlaps the original (a fraction
    1 - |log s| / log(r_max / r_min) of it).
    """
    name = "scaling_invariant"
    p = resolve_params(name, params, SCALING_DEFAULTS)
    n = positive_int(name, p, "n_samples")
    r_lo, r_hi = value_range(name, p, "radius_range", positive=True)
    rng = np.random.default_rng(seed)
    radius = np.exp(rng.uniform(np.log(r_lo), np.log(r_hi), n))
    theta = rng.uniform(0.0, 2 * np.pi, n)
    x = radius[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=-1)
    meta = provenance(name, p, seed)
    meta.update(
        symmetry_function=(
            "dilations x -> s x, s > 0 (identity component of the function's linear symmetry group; "
            "y = cos(2 theta) also keeps the discrete x -> -x, x1 -> -x1 and x2 -> -x2, but not rotations)"
        ),
        symmetry_data=(
            "rotations exactly (uniform angle); dilations only approximately (log-uniform radius on the "
            "finite range radius_range); the joint law of (x, y) keeps the dilations only"
        ),
    )
    return _dataset(x, angle_function(x), p, rng, 2, np.eye(2)[None], meta)
