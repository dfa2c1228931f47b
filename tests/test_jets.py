"""Top vs QCD jets from Pythia 8 + FastJet: physics sanity, reproducibility, dataset building, reference reader."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")
h5py = pytest.importorskip("h5py")

from liegan_core.data import get_generator, load  # noqa: E402
from liegan_core.data.jets import (  # noqa: E402
    CHUNK_KEYS,
    build_dataset,
    generate_chunk,
    invariant_mass,
    load_chunk,
    load_reference_h5,
    resolve_params,
    save_chunk,
    top_tagging,
)
from liegan_core.errors import UserError  # noqa: E402
from liegan_core.lie import so13_basis  # noqa: E402

N_PER_CLASS = 150
SEED = 7


@pytest.fixture(scope="module")
def chunk() -> dict[str, np.ndarray]:
    """One chunk of 150 top and 150 QCD jets, shared by the physics and dataset tests (~20 s)."""
    return generate_chunk({"jets_per_chunk": N_PER_CLASS}, seed=SEED, chunk=0)


def test_chunk_shapes_and_labels(chunk: dict[str, np.ndarray]) -> None:
    n = 2 * N_PER_CLASS
    assert chunk["constituents"].shape == (n, 200, 4) and chunk["constituents"].dtype == np.float32
    assert set(chunk) == set(CHUNK_KEYS)
    for key in ("n_constituents", "label", "jet_pt", "jet_eta", "jet_mass"):
        assert chunk[key].shape == (n,)
    assert chunk["label"].dtype == np.int64
    assert np.array_equal(np.bincount(chunk["label"]), [N_PER_CLASS, N_PER_CLASS])
    # zero padding after the last constituent, real constituents before it
    slots = np.arange(200)[None, :]
    real = slots < chunk["n_constituents"][:, None]
    assert np.all(chunk["constituents"][~real] == 0)
    assert np.all(chunk["constituents"][real][:, 0] > 0)


def test_jet_cuts_and_kinematics(chunk: dict[str, np.ndarray]) -> None:
    assert np.all((chunk["jet_pt"] > 550) & (chunk["jet_pt"] < 650))
    assert np.all(np.abs(chunk["jet_eta"]) < 2)
    total = chunk["constituents"].astype(np.float64).sum(axis=1)
    full = chunk["n_constituents"] < 200  # the stored constituents are the whole jet
    np.testing.assert_allclose(np.hypot(total[full, 1], total[full, 2]), chunk["jet_pt"][full], rtol=1e-4)
    mass = invariant_mass(chunk["constituents"])
    np.testing.assert_allclose(mass[full], chunk["jet_mass"][full], rtol=1e-3, atol=0.05)
    pt = [np.hypot(*c[: n, 1:3].T) for c, n in zip(chunk["constituents"], chunk["n_constituents"])]
    assert all(np.all(np.diff(p) <= 1e-3) for p in pt), "constituents must be ordered by decreasing pT"


def test_mass_peaks(chunk: dict[str, np.ndarray]) -> None:
    top = np.median(chunk["jet_mass"][chunk["label"] == 1])
    qcd = np.median(chunk["jet_mass"][chunk["label"] == 0])
    assert 150 < top < 200, f"top jet mass median {top:.1f} GeV"
    assert qcd < 120, f"QCD jet mass median {qcd:.1f} GeV"


def test_constituents_on_shell(chunk: dict[str, np.ndarray]) -> None:
    real = np.arange(200)[None, :] < chunk["n_constituents"][:, None]
    p4 = chunk["constituents"][real].astype(np.float64)
    e2 = p4[:, 0] ** 2
    m2 = e2 - (p4[:, 1:] ** 2).sum(axis=1)
    assert np.all(m2 >= -1e-5 * e2), "space-like constituent beyond float32 rounding"
    assert np.all(np.sqrt(np.abs(m2)) < 2.0), "constituents are photons, leptons and light hadrons (m < 2 GeV)"


def test_invariant_mass() -> None:
    photons = np.array([[[1.0, 0, 0, 1.0], [1.0, 0, 0, -1.0], [0, 0, 0, 0]]])
    np.testing.assert_allclose(invariant_mass(photons), [2.0])
    np.testing.assert_allclose(invariant_mass(photons[:, :1]), [0.0])


def test_same_seed_and_chunk_reproduce_and_chunks_differ() -> None:
    """The in-process generator's chunk 0 equals a separate run of chunk 0; chunk 1 differs."""
    params = {"jets_per_chunk": 5, "n_chunks": 2}
    again = generate_chunk(params, seed=3, chunk=0)
    ds = get_generator("top_tagging")(params, 3)
    assert get_generator("top_tagging") is top_tagging
    rows = ds.extras["constituents"]
    from_chunk0 = np.array([any(np.array_equal(r, c) for c in again["constituents"]) for r in rows])
    assert from_chunk0.sum() == 10, "chunk 0 must be reproduced exactly by the same seed and chunk"
    assert not np.any(np.isin(ds.extras["jet_pt"][~from_chunk0], again["jet_pt"])), "chunk 1 must differ from chunk 0"


def test_chunk_io_and_build_dataset(chunk: dict[str, np.ndarray], tmp_path: Path) -> None:
    paths = []
    for i, rows in enumerate((slice(0, 100), slice(100, None))):
        path = tmp_path / f"chunk_{i}.npz"
        save_chunk({k: v[rows] for k, v in chunk.items()}, path)
        paths.append(str(path))
    back = load_chunk(paths[0])
    for key in CHUNK_KEYS:
        np.testing.assert_array_equal(back[key], chunk[key][:100])

    ds = build_dataset(paths, {}, seed=11)
    n = 2 * N_PER_CLASS
    assert ds.x.shape == (n, 2, 4) and ds.x.dtype == np.float64
    assert ds.y.shape == (n,) and ds.y.dtype == np.int64
    assert ds.x_rep == {"type": "vector", "n": 4} and ds.y_rep == {"type": "label", "classes": 2}
    np.testing.assert_array_equal(ds.true_algebra, so13_basis())
    np.testing.assert_array_equal(ds.x, ds.extras["constituents"][:, :2])
    assert sorted(ds.splits) == ["test", "train", "val"]
    all_idx = np.concatenate(list(ds.splits.values()))
    assert np.array_equal(np.sort(all_idx), np.arange(n)), "splits partition the rows"
    assert [len(ds.splits[s]) for s in ("train", "val", "test")] == [180, 60, 60]
    for idx in ds.splits.values():
        assert set(ds.y[idx]) == {0, 1}
    assert ds.meta["generator"] == "top_tagging" and ds.meta["seed"] == 11
    assert {"pythia8mc", "fastjet"} <= set(ds.meta["versions"])
    assert ds.meta["symmetry_function"] == "SO(1,3)+ Lorentz"
    assert ds.meta["symmetry_data"].startswith("SO(1,3)+ approx.")

    again = build_dataset(paths, {}, seed=11)
    np.testing.assert_array_equal(again.x, ds.x)
    other = build_dataset(paths, {}, seed=12)
    assert not np.array_equal(other.x, ds.x)

    ds.save(tmp_path / "jets.npz")
    loaded = load(tmp_path / "jets.npz")
    np.testing.assert_array_equal(loaded.extras["constituents"], ds.extras["constituents"])
    np.testing.assert_array_equal(loaded.splits["val"], ds.splits["val"])


def test_bad_params_and_chunks(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="jet_pt_min"):
        resolve_params({"jet_pt_min": 700})
    with pytest.raises(UserError, match="split"):
        resolve_params({"split": [0.5, 0.5]})
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="bad.npz"):
        load_chunk(bad)


def _reference_columns(rng: np.random.Generator, n: int, k: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Random jets in the reference's column order (E_0, PX_0, PY_0, PZ_0, E_1, ...), zero-padded."""
    p = rng.normal(scale=20.0, size=(n, k, 3))
    e = np.linalg.norm(p, axis=-1)
    p4 = np.concatenate([e[..., None], p], axis=-1).astype(np.float32)
    counts = rng.integers(1, k + 1, size=n)
    p4[np.arange(k)[None, :] >= counts[:, None]] = 0
    return p4, counts


def _write_fixed_format(path: Path, p4: np.ndarray, labels: np.ndarray, with_label: bool = True) -> None:
    """The pandas `fixed` layout: float columns in block0, integer columns in block1."""
    n, k, _ = p4.shape
    names = [f"{c}_{i}" for i in range(k) for c in ("E", "PX", "PY", "PZ")] + ["truthE", "truthPX"]
    floats = np.concatenate([p4.reshape(n, -1), np.ones((n, 2), np.float32)], axis=1)
    int_names = ["ttv"] + (["is_signal_new"] if with_label else [])
    ints = np.stack([np.zeros(n, np.int64)] + ([labels] if with_label else []), axis=1)
    with h5py.File(path, "w") as f:
        g = f.create_group("table")
        g.attrs["pandas_type"] = "frame"
        g.attrs["nblocks"] = 2
        g["axis0"] = np.array(names + int_names, dtype="S")
        g["axis1"] = np.arange(n)
        g["block0_items"] = np.array(names, dtype="S")
        g["block0_values"] = floats
        g["block1_items"] = np.array(int_names, dtype="S")
        g["block1_values"] = ints


def test_reference_h5_fixed_format_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    p4, counts = _reference_columns(rng, 6)
    labels = np.array([1, 0, 1, 1, 0, 0])
    path = tmp_path / "train.h5"
    _write_fixed_format(path, p4, labels)

    ds = load_reference_h5(path)
    np.testing.assert_array_equal(ds.extras["constituents"], p4)
    np.testing.assert_array_equal(ds.y, labels)
    np.testing.assert_array_equal(ds.extras["n_constituents"], counts)
    np.testing.assert_array_equal(ds.x, p4[:, :2].astype(np.float64))
    np.testing.assert_allclose(ds.extras["jet_mass"], invariant_mass(p4), rtol=1e-5)
    assert ds.true_algebra.shape == (6, 4, 4) and list(ds.splits) == ["all"]

    short = load_reference_h5(path, n_leading=3, max_constituents=30)
    np.testing.assert_array_equal(short.extras["constituents"], p4[:, :30])
    assert short.x.shape == (6, 3, 4)


def test_reference_h5_table_format_named_fields(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    p4, _ = _reference_columns(rng, 4, k=3)
    names = [f"{c}_{i}" for i in range(3) for c in ("E", "PX", "PY", "PZ")]
    rows = np.zeros(4, dtype=[("index", "i8")] + [(n, "f4") for n in names] + [("is_signal_new", "i8")])
    for j, name in enumerate(names):
        rows[name] = p4.reshape(4, -1)[:, j]
    rows["is_signal_new"] = [0, 1, 0, 1]
    path = tmp_path / "table.h5"
    with h5py.File(path, "w") as f:
        f.create_group("table")["table"] = rows
    ds = load_reference_h5(path, max_constituents=3)
    np.testing.assert_array_equal(ds.extras["constituents"], p4)
    np.testing.assert_array_equal(ds.y, [0, 1, 0, 1])


def test_reference_h5_table_format_via_pandas(tmp_path: Path) -> None:
    pytest.importorskip("tables")
    import pandas as pd

    p4, _ = _reference_columns(np.random.default_rng(2), 5, k=4)
    frame = pd.DataFrame(p4.reshape(5, -1), columns=[f"{c}_{i}" for i in range(4) for c in ("E", "PX", "PY", "PZ")])
    frame["is_signal_new"] = [1, 0, 1, 0, 1]
    path = tmp_path / "packed.h5"
    frame.to_hdf(path, key="table", format="table")
    ds = load_reference_h5(path, max_constituents=4)
    np.testing.assert_array_equal(ds.extras["constituents"], p4)


def test_reference_h5_errors(tmp_path: Path) -> None:
    p4, _ = _reference_columns(np.random.default_rng(3), 3)
    path = tmp_path / "nolabel.h5"
    _write_fixed_format(path, p4, np.zeros(3, np.int64), with_label=False)
    with pytest.raises(UserError, match=r"nolabel\.h5.*is_signal_new"):
        load_reference_h5(path)
    with pytest.raises(UserError, match=r"nolabel\.h5.*E_200"):
        load_reference_h5(path, max_constituents=201)
    with pytest.raises(UserError, match="not found"):
        load_reference_h5(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"junk")
    with pytest.raises(UserError, match=r"junk\.h5"):
        load_reference_h5(junk)
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        f.create_group("other")
    with pytest.raises(UserError, match=r"empty\.h5.*'table'"):
        load_reference_h5(empty)
