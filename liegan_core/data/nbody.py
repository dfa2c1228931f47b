"""N-body gravitational orbits (the paper's 2-body and 3-body data), generated from first principles.

Unit masses and gravitational constant, centre of mass at rest at the origin, near-circular
counter-clockwise initial velocities, integrated with a tight-tolerance ODE solver. Each step's
state is (q1, p1, q2, p2, ...) with 2-D positions q and momenta p; the symmetry is SO(2) acting
as the same 2x2 rotation on every 2-vector.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from ..errors import UserError
from ..lie import repeat_block, so2_generator
from . import register_generator
from .dataset import Dataset, provenance

HNN_COLUMN_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]
TWO_BODY_DEFAULTS: dict[str, Any] = {
    "n_train_orbits": 814,
    "n_test_orbits": 790,
    "steps": 20,
    "dt": 20 / 49,
    "radius": [1.5, 3.0],
    "velocity_perturbation": 1e-3,
    "rtol": 1e-9,
    "atol": 1e-9,
    "split": "angle",
    "input_steps": 1,
    "output_steps": 1,
    "drop_last_window": True,
    "energy_drift_tolerance": 1e-4,
}
THREE_BODY_DEFAULTS: dict[str, Any] = {
    **TWO_BODY_DEFAULTS,
    "n_train_orbits": 500,
    "n_test_orbits": 500,
    "radius": [0.9, 1.2],
    "velocity_perturbation": 0.05,
    "dt": 0.3,
}


def split_state(states: np.ndarray, bodies: int) -> tuple[np.ndarray, np.ndarray]:
    """states [..., 4*bodies] ordered (q1, p1, q2, p2, ...) -> q, p each [..., bodies, 2]."""
    s = states.reshape(*states.shape[:-1], bodies, 2, 2)
    return s[..., 0, :], s[..., 1, :]


def energy(states: np.ndarray, bodies: int) -> np.ndarray:
    """Total energy sum |p|^2/2 - sum_{i<j} 1/|q_i - q_j| (unit masses, G = 1), shape states[..., 0]."""
    q, p = split_state(states, bodies)
    kinetic = 0.5 * (p**2).sum(axis=(-1, -2))
    potential = np.zeros(kinetic.shape)
    for i in range(bodies):
        for j in range(i + 1, bodies):
            potential -= 1.0 / np.linalg.norm(q[..., i, :] - q[..., j, :], axis=-1)
    return kinetic + potential


def angular_momentum(states: np.ndarray, bodies: int) -> np.ndarray:
    """Total angular momentum sum q x p (z component)."""
    q, p = split_state(states, bodies)
    return (q[..., 0] * p[..., 1] - q[..., 1] * p[..., 0]).sum(axis=-1)


def centre_of_mass(states: np.ndarray, bodies: int) -> np.ndarray:
    q, _ = split_state(states, bodies)
    return q.mean(axis=-2)


def conservation_report(trajectories: np.ndarray, bodies: int) -> dict[str, np.ndarray]:
    """Per-trajectory drifts [n_orbits] of energy and angular momentum (max |value - initial|)."""
    e = energy(trajectories, bodies)
    am = angular_momentum(trajectories, bodies)
    com = centre_of_mass(trajectories, bodies)
    return {
        "energy_drift": np.abs(e - e[:, :1]).max(axis=1),
        "angular_momentum_drift": np.abs(am - am[:, :1]).max(axis=1),
        "com_max": np.abs(com).max(axis=(1, 2)),
    }


def corrupted_trajectories(trajectories: np.ndarray, bodies: int, tolerance: float) -> np.ndarray:
    """Indices of trajectories whose energy drifts by more than `tolerance` (e.g. spliced orbits)."""
    return np.flatnonzero(conservation_report(trajectories, bodies)["energy_drift"] > tolerance)


def _rhs(_t: float, state: np.ndarray, n_orbits: int, bodies: int) -> np.ndarray:
    s = state.reshape(n_orbits, bodies, 2, 2)
    q, p = s[:, :, 0, :], s[:, :, 1, :]
    diff = q[:, None, :, :] - q[:, :, None, :]  # [o, i, j, 2] = q_j - q_i
    dist3 = np.linalg.norm(diff, axis=-1) ** 3
    np.einsum("oii->oi", dist3)[...] = np.inf
    force = (diff / dist3[..., None]).sum(axis=2)
    return np.stack([p, force], axis=2).reshape(-1)


def simulate(q0: np.ndarray, p0: np.ndarray, steps: int, dt: float, rtol: float, atol: float) -> np.ndarray:
    """Integrate orbits q0, p0 [n_orbits, bodies, 2] -> trajectories [n_orbits, steps, 4*bodies].

    All orbits are integrated as one vectorised system with DOP853 (8th order); the tolerance
    applies to the joint error norm, and the conservation tests check each orbit individually.
    """
    n_orbits, bodies, _ = q0.shape
    y0 = np.stack([q0, p0], axis=2).reshape(-1)
    t_eval = dt * np.arange(steps)
    sol = solve_ivp(
        _rhs, (0.0, t_eval[-1]), y0, method="DOP853", t_eval=t_eval, rtol=rtol, atol=atol,
        args=(n_orbits, bodies),
    )
    if not sol.success:
        raise RuntimeError(f"ODE integration failed: {sol.message}")
    return sol.y.T.reshape(steps, n_orbits, bodies * 4).transpose(1, 0, 2)


def circular_initial_conditions(
    angles: np.ndarray, radii: np.ndarray, bodies: int, perturbation: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Bodies evenly spaced on a circle, moving counter-clockwise at the circular speed.

    For k equal unit masses on a ring of radius r the inward force on each is
    sum_{j=1}^{k-1} 1/(4 r^2 sin(pi j/k)), so the circular speed is sqrt(r * force). The speed is
    multiplied by (1 + perturbation * N(0, 1)); the mean momentum is removed so the centre of mass
    stays at rest.
    """
    n = angles.size
    offsets = 2 * np.pi * np.arange(bodies) / bodies
    theta = angles[:, None] + offsets[None, :]
    unit = np.stack([np.cos(theta), np.sin(theta)], axis=-1)
    q = radii[:, None, None] * unit
    force = sum(1.0 / (4 * radii**2 * np.sin(np.pi * j / bodies)) for j in range(1, bodies))
    speed = np.sqrt(radii * force)[:, None] * (1 + perturbation * rng.standard_normal((n, bodies)))
    tangent = np.stack([-np.sin(theta), np.cos(theta)], axis=-1)
    p = speed[..., None] * tangent
    p -= p.mean(axis=1, keepdims=True)
    q -= q.mean(axis=1, keepdims=True)
    return q, p


def make_windows(
    trajectories: np.ndarray, input_steps: int, output_steps: int, drop_last: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slide windows over each trajectory: x [N, input_steps, d], y [N, output_steps, d], orbit id [N].

    drop_last reproduces the published LieGAN loader, which drops the last valid window
    (18 windows per 20-step orbit at lengths 1 -> 1, hence 14,652 training pairs).
    """
    n_orbits, steps, d = trajectories.shape
    n_win = steps - input_steps - output_steps + 1 - int(drop_last)
    if n_win < 1:
        raise UserError(
            f"data.params: input_steps={input_steps} + output_steps={output_steps} leave no window in "
            f"{steps} steps"
        )
    starts = np.arange(n_win)
    xi = starts[:, None] + np.arange(input_steps)[None, :]
    yi = starts[:, None] + input_steps + np.arange(output_steps)[None, :]
    x = trajectories[:, xi].reshape(n_orbits * n_win, input_steps, d)
    y = trajectories[:, yi].reshape(n_orbits * n_win, output_steps, d)
    orbit = np.repeat(np.arange(n_orbits), n_win)
    return x, y, orbit


def nbody_true_algebra(bodies: int) -> np.ndarray:
    """The 2x2 rotation generator on each of the 2*bodies 2-vectors: [1, 4*bodies, 4*bodies]."""
    return repeat_block(so2_generator(), 2 * bodies)[None]


def _windows_dataset(
    trajectories: np.ndarray, train_orbits: np.ndarray, test_orbits: np.ndarray, bodies: int,
    params: dict[str, Any], meta: dict[str, Any],
) -> Dataset:
    x, y, orbit = make_windows(
        trajectories, int(params["input_steps"]), int(params["output_steps"]), bool(params["drop_last_window"])
    )
    q, _ = split_state(trajectories[:, 0], bodies)
    initial_angle = np.degrees(np.arctan2(q[:, 0, 1], q[:, 0, 0]))
    train_mask = np.isin(orbit, train_orbits)
    test_mask = np.isin(orbit, test_orbits)
    d = 4 * bodies
    return Dataset(
        x=x,
        y=y,
        splits={"train": np.flatnonzero(train_mask), "test": np.flatnonzero(test_mask)},
        x_rep={"type": "vector", "n": d},
        y_rep={"type": "vector", "n": d},
        true_algebra=nbody_true_algebra(bodies),
        meta=meta,
        extras={"orbit": orbit.astype(np.int64), "initial_angle_deg": initial_angle[orbit]},
    )


def generate_nbody(params: dict[str, Any], seed: int, bodies: int, defaults: dict[str, Any]) -> Dataset:
    p = {**defaults, **params}
    rng = np.random.default_rng(seed)
    n_train, n_test = int(p["n_train_orbits"]), int(p["n_test_orbits"])
    n = n_train + n_test
    lo, hi = p["radius"]
    radii = rng.uniform(lo, hi, n)
    if p["split"] == "angle":
        angles = np.concatenate([rng.uniform(-np.pi, 0.0, n_train), rng.uniform(0.0, np.pi, n_test)])
        order = np.arange(n)
    elif p["split"] == "random":
        angles = rng.uniform(-np.pi, np.pi, n)
        order = rng.permutation(n)
    else:
        raise UserError(f"data.params.split must be 'angle' or 'random', got '{p['split']}'")
    q0, p0 = circular_initial_conditions(angles, radii, bodies, float(p["velocity_perturbation"]), rng)
    traj = simulate(q0, p0, int(p["steps"]), float(p["dt"]), float(p["rtol"]), float(p["atol"]))
    name = "two_body" if bodies == 2 else f"{bodies}_body"
    meta = provenance(name, p, seed)
    meta.update(
        symmetry_function="SO(2)",
        symmetry_data="SO(2) (the angle split restricts each split to half the orientations)",
        bodies=bodies,
        conservation={k: float(v.max()) for k, v in conservation_report(traj, bodies).items()},
    )
    return _windows_dataset(traj, order[:n_train], order[n_train:], bodies, p, meta)


@register_generator("two_body")
def two_body(params: dict[str, Any], seed: int) -> Dataset:
    """The paper's 2-body orbits, generated (see TWO_BODY_DEFAULTS for the parameters)."""
    return generate_nbody(params, seed, 2, TWO_BODY_DEFAULTS)


@register_generator("three_body")
def three_body(params: dict[str, Any], seed: int) -> Dataset:
    """Three equal masses starting near an equilateral circular orbit (Lagrange's solution), perturbed."""
    return generate_nbody(params, seed, 3, THREE_BODY_DEFAULTS)


def load_hnn_trajectories(path: str | Path) -> dict[str, np.ndarray]:
    """Read the published 2-body npz (arrays train/test [orbits, 20, 8], HNN column order) -> reordered."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read as a pickle-free .npz file ({e})") from e
    out = {}
    for split in ("train", "test"):
        if split not in arrays:
            raise UserError(f"{path}: expected arrays 'train' and 'test', found {sorted(arrays)}")
        a = arrays[split]
        if a.ndim != 3 or a.shape[-1] != 8:
            raise UserError(f"{path}: array '{split}' must have shape [orbits, steps, 8], got {list(a.shape)}")
        out[split] = a[..., HNN_COLUMN_ORDER].astype(np.float64)
    return out


@register_generator("two_body_file")
def two_body_file(params: dict[str, Any], seed: int) -> Dataset:
    """The published 2-body data file as a dataset (params: path; corrupted orbits dropped by default)."""
    p = {**TWO_BODY_DEFAULTS, "drop_corrupted": True, **params}
    if "path" not in p:
        raise UserError("data.params.path: the generator two_body_file needs the path of the published npz")
    arrays = load_hnn_trajectories(p["path"])
    bad = corrupted_trajectories(arrays["train"], 2, float(p["energy_drift_tolerance"]))
    train = arrays["train"]
    if p["drop_corrupted"]:
        train = np.delete(train, bad, axis=0)
    traj = np.concatenate([train, arrays["test"]])
    meta = provenance("two_body_file", p, seed)
    meta.update(
        symmetry_function="SO(2)", symmetry_data="SO(2)", bodies=2,
        corrupted_train_trajectories=bad.tolist(),
    )
    n_train = len(train)
    return _windows_dataset(traj, np.arange(n_train), np.arange(n_train, len(traj)), 2, p, meta)
