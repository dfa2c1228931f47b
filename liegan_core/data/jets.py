"""Top-quark vs QCD jets generated with Pythia 8 and FastJet, after the public Top Tagging Reference recipe.

pp collisions at 14 TeV; signal is ttbar with every W forced to decay to quarks, background is QCD
dijets; the hard process's pT is limited to 500-700 GeV. Visible final-state particles (no
neutrinos, no detector) are clustered with anti-kt R = 0.8 and the leading jet is kept if
550 < pT < 650 GeV and |eta| < 2; a top jet must also contain a hadronic top and its three decay
quarks within DeltaR 0.8 of its axis. Jets are made in independent chunks (one Pythia run per class
and chunk, seeded from (seed, chunk, class)) so a cluster can run one job per chunk and memory
never grows with the total number of jets.

The group acting on each constituent's 4-momentum (E, px, py, pz) is the Lorentz group SO(1,3)+.
"""
from __future__ import annotations

import importlib.util
import math
import numbers
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import UserError
from ..io import write_npz
from ..lie import minkowski_metric, so13_basis
from . import register_generator
from .dataset import Dataset, provenance

DEFAULTS: dict[str, Any] = {
    "jets_per_chunk": 1000,
    "max_constituents": 200,
    "ecm": 14000.0,
    "pthat_min": 500.0,
    "pthat_max": 700.0,
    "jet_pt_min": 550.0,
    "jet_pt_max": 650.0,
    "jet_eta_max": 2.0,
    "jet_radius": 0.8,
    "match_radius": 0.8,
    "n_chunks": 1,
    "n_leading": 2,
    "split": [0.6, 0.2, 0.2],
}
SPLIT_NAMES = ("train", "val", "test")
CHUNK_KEYS = ("constituents", "n_constituents", "label", "jet_pt", "jet_eta", "jet_mass")
SYMMETRY_META = {
    "symmetry_function": "SO(1,3)+ Lorentz",
    "symmetry_data": (
        "SO(1,3)+ approx. (jets are boosted along different directions; the class-conditional "
        "distribution of constituents is not exactly invariant)"
    ),
}
SIGNAL_SETTINGS = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "24:onMode = off", "24:onIfAny = 1 2 3 4 5")
BACKGROUND_SETTINGS = ("HardQCD:all = on",)
PYTHIA_SEED_MAX = 900_000_000
# Give up on a class after this many events per requested jet: only reached when the cuts admit
# (almost) nothing, e.g. a jet pT window outside the hard process's pT range.
MAX_EVENTS_PER_JET = 200
REFERENCE_COMPONENTS = ("E", "PX", "PY", "PZ")
REFERENCE_LABEL = "is_signal_new"
H5_ROWS_PER_READ = 20_000


def resolve_params(params: dict[str, Any]) -> dict[str, Any]:
    """Defaults filled in and checked, so a bad value fails before minutes of event generation."""
    p = {**DEFAULTS, **params}
    for key in ("jets_per_chunk", "max_constituents", "n_chunks", "n_leading"):
        if not isinstance(p[key], numbers.Integral) or isinstance(p[key], bool) or p[key] < 1:
            raise UserError(f"data.params.{key} must be a positive integer, got {p[key]!r}")
    positive = ("ecm", "pthat_min", "pthat_max", "jet_pt_min", "jet_pt_max", "jet_eta_max", "jet_radius")
    for key in (*positive, "match_radius"):
        if not isinstance(p[key], numbers.Real) or isinstance(p[key], bool) or not p[key] > 0:
            raise UserError(f"data.params.{key} must be a positive number, got {p[key]!r}")
    for lo, hi in (("pthat_min", "pthat_max"), ("jet_pt_min", "jet_pt_max")):
        if p[lo] >= p[hi]:
            raise UserError(f"data.params.{lo} ({p[lo]}) must be below data.params.{hi} ({p[hi]})")
    if p["n_leading"] > p["max_constituents"]:
        raise UserError(
            f"data.params.n_leading ({p['n_leading']}) exceeds data.params.max_constituents ({p['max_constituents']})"
        )
    split = p["split"]
    if (
        not isinstance(split, (list, tuple))
        or len(split) != len(SPLIT_NAMES)
        or not all(isinstance(f, numbers.Real) and f > 0 for f in split)
        or abs(sum(split) - 1.0) > 1e-6
    ):
        raise UserError(
            f"data.params.split must be 3 positive fractions (train, val, test) summing to 1, got {split!r}"
        )
    return p


def pythia_seed(seed: int, chunk: int, label: int) -> int:
    """Pythia's Random:seed for one class of one chunk: a hash of all three, in Pythia's range 1..9e8."""
    if seed < 0 or chunk < 0:
        raise UserError(f"seed ({seed}) and chunk ({chunk}) must be non-negative")
    state = np.random.SeedSequence([seed, chunk, label]).generate_state(1, dtype=np.uint64)[0]
    return int(state % PYTHIA_SEED_MAX) + 1


def generate_chunk(params: dict[str, Any], seed: int, chunk: int, progress: bool = False) -> dict[str, np.ndarray]:
    """`jets_per_chunk` top jets then as many QCD jets, independent of every other chunk.

    Returns constituents [N, max_constituents, 4] float32 (E, px, py, pz, leading pT first,
    zero-padded), n_constituents [N], label [N] (1 top, 0 QCD), jet_pt, jet_eta, jet_mass [N].
    """
    from tqdm import tqdm

    _require_extra("pythia8mc", "fastjet")
    import fastjet._swig as fj

    p = resolve_params(params)
    fj.ClusterSequence.set_fastjet_banner_stream(None)  # keep FastJet's banner off stdout
    jet_def = fj.JetDefinition(fj.antikt_algorithm, float(p["jet_radius"]))
    n = int(p["jets_per_chunk"])
    with tqdm(total=2 * n, desc=f"top_tagging chunk {chunk}", unit="jet", file=sys.stderr, disable=not progress) as bar:
        parts = [_generate_class(label, p, pythia_seed(seed, chunk, label), jet_def, bar.update) for label in (1, 0)]
    return {key: np.concatenate([part[key] for part in parts]) for key in CHUNK_KEYS}


def _make_pythia(label: int, p: dict[str, Any], random_seed: int) -> Any:
    """A silent, seeded Pythia for the signal (label 1) or background (label 0) process."""
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    settings = [
        f"Beams:eCM = {float(p['ecm'])}",
        *(SIGNAL_SETTINGS if label == 1 else BACKGROUND_SETTINGS),
        f"PhaseSpace:pTHatMin = {float(p['pthat_min'])}",
        f"PhaseSpace:pTHatMax = {float(p['pthat_max'])}",
        "Random:setSeed = on",
        f"Random:seed = {random_seed}",
        "Print:quiet = on",
        "Next:numberCount = 0",
    ]
    for line in settings:
        if not pythia.readString(line):
            raise UserError(f"Pythia rejected the setting '{line}'")
    if not pythia.init():
        raise UserError(f"Pythia failed to initialise with {settings}; check data.params ecm and pthat_min/pthat_max")
    return pythia


def _generate_class(
    label: int, p: dict[str, Any], random_seed: int, jet_def: Any, advance: Callable[[int], Any]
) -> dict[str, np.ndarray]:
    """Generate events until `jets_per_chunk` jets of one class pass the cuts (and, for tops, the matching)."""
    n, max_c = int(p["jets_per_chunk"]), int(p["max_constituents"])
    out = {
        "constituents": np.zeros((n, max_c, 4), dtype=np.float32),
        "n_constituents": np.zeros(n, dtype=np.int32),
        "label": np.full(n, label, dtype=np.int64),
        "jet_pt": np.zeros(n, dtype=np.float32),
        "jet_eta": np.zeros(n, dtype=np.float32),
        "jet_mass": np.zeros(n, dtype=np.float32),
    }
    pythia = _make_pythia(label, p, random_seed)
    kept = events = 0
    while kept < n:
        if events >= MAX_EVENTS_PER_JET * n:
            raise UserError(
                f"only {kept} of {n} {'top' if label else 'QCD'} jets passed the cuts in {events} events; "
                f"data.params jet_pt_min/jet_pt_max ({p['jet_pt_min']}-{p['jet_pt_max']}) and jet_eta_max must "
                f"lie inside what pthat_min/pthat_max ({p['pthat_min']}-{p['pthat_max']}) produce"
            )
        events += 1
        if not pythia.next():
            continue
        jet = _leading_jet(pythia.event, jet_def, p)
        if jet is None:
            continue
        p4, pt, eta, phi, mass = jet
        if label == 1 and not _top_matched(pythia.event, eta, phi, float(p["match_radius"])):
            continue
        m = min(len(p4), max_c)
        out["constituents"][kept, :m] = p4[:m]
        out["n_constituents"][kept] = m
        out["jet_pt"][kept], out["jet_eta"][kept], out["jet_mass"][kept] = pt, eta, mass
        kept += 1
        advance(1)
    return out


def _leading_jet(event: Any, jet_def: Any, p: dict[str, Any]) -> tuple[np.ndarray, float, float, float, float] | None:
    """The leading anti-kt jet of the visible final state if it passes the pT and |eta| cuts.

    Returns (constituent 4-momenta [n, 4] by decreasing pT, pT, eta, phi, mass); everything is
    copied out while the ClusterSequence is alive, since FastJet jets reference it.
    """
    import fastjet._swig as fj

    particles = [fj.PseudoJet(q.px(), q.py(), q.pz(), q.e()) for q in event if q.isFinal() and q.isVisible()]
    sequence = fj.ClusterSequence(particles, jet_def)
    jets = fj.sorted_by_pt(sequence.inclusive_jets(float(p["jet_pt_min"])))
    if not jets:
        return None
    jet = jets[0]
    if jet.pt() >= p["jet_pt_max"] or abs(jet.eta()) >= p["jet_eta_max"]:
        return None
    p4 = np.array([(c.E(), c.px(), c.py(), c.pz()) for c in fj.sorted_by_pt(jet.constituents())], dtype=np.float64)
    return p4, jet.pt(), jet.eta(), jet.phi(), jet.m()


def _top_matched(event: Any, eta: float, phi: float, radius: float) -> bool:
    """Whether a hadronically decaying top (last copy) and its b and two W quarks lie within `radius` of the axis."""
    for q in event:
        if q.idAbs() != 6 or q.iBotCopyId() != q.index():
            continue
        decay = [event[i] for i in q.daughterList()]
        ws = [d for d in decay if d.idAbs() == 24]
        bs = [d for d in decay if 1 <= d.idAbs() <= 5]
        if len(ws) != 1 or len(bs) != 1:
            continue
        w_last = event[ws[0].iBotCopyId()]
        w_quarks = [event[i] for i in w_last.daughterList() if 1 <= event[i].idAbs() <= 5]
        if len(w_quarks) != 2:
            continue
        if all(delta_r(eta, phi, x.eta(), x.phi()) < radius for x in (q, bs[0], *w_quarks)):
            return True
    return False


def delta_r(eta1: float, phi1: float, eta2: float, phi2: float) -> float:
    """Distance in the (pseudorapidity, azimuth) plane, azimuth wrapped to [-pi, pi)."""
    dphi = (phi1 - phi2 + math.pi) % (2 * math.pi) - math.pi
    return math.hypot(eta1 - eta2, dphi)


def invariant_mass(p4: np.ndarray) -> np.ndarray:
    """Mass of the summed 4-momenta (E, px, py, pz) over the constituent axis: [..., n, 4] -> [...].

    Zero-padded rows add nothing; a slightly negative m^2 from rounding gives mass 0.
    """
    total = np.asarray(p4, dtype=np.float64).sum(axis=-2)
    m2 = np.einsum("...i,ij,...j->...", total, minkowski_metric(), total)
    return np.sqrt(np.maximum(m2, 0.0))


def save_chunk(arrays: dict[str, np.ndarray], path: str | Path) -> None:
    """Write one chunk atomically, so a killed job leaves no half-written file for the next step."""
    missing = [k for k in CHUNK_KEYS if k not in arrays]
    if missing:
        raise UserError(f"{path}: chunk to save lacks arrays {missing}")
    write_npz(path, **{k: arrays[k] for k in CHUNK_KEYS})


def load_chunk(path: str | Path) -> dict[str, np.ndarray]:
    """Read a chunk written by `save_chunk` (no pickled objects), checking its arrays are all there."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: jet chunk not found; generate it first")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # zip/np errors: a truncated or foreign file
        raise UserError(f"{path}: cannot read jet chunk ({e}); delete it and regenerate") from e
    missing = [k for k in CHUNK_KEYS if k not in arrays]
    if missing:
        raise UserError(f"{path}: jet chunk lacks arrays {missing}; delete it and regenerate")
    return arrays


def build_dataset(chunk_paths: list[str], params: dict[str, Any], seed: int) -> Dataset:
    """Concatenate chunks, shuffle with `seed`, and split train/val/test stratified by class."""
    p = resolve_params(params)
    if not chunk_paths:
        raise UserError("build_dataset needs at least one chunk file")
    chunks = [load_chunk(path) for path in chunk_paths]
    widths = {c["constituents"].shape[1] for c in chunks}
    if len(widths) != 1:
        raise UserError(f"chunks {chunk_paths} hold different numbers of constituents per jet: {sorted(widths)}")
    data = {k: np.concatenate([c[k] for c in chunks]) for k in CHUNK_KEYS}
    del chunks
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data["label"]))
    data = {k: v[order] for k, v in data.items()}
    splits = stratified_splits(data["label"], p["split"], rng)
    meta = provenance("top_tagging", p, seed)
    meta.update(SYMMETRY_META)
    meta["versions"].update(_physics_versions())
    meta["chunks"] = [Path(c).name for c in chunk_paths]
    return _jet_dataset(data, int(p["n_leading"]), splits, meta)


def stratified_splits(labels: np.ndarray, fractions: list[float], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Split indices per class by `fractions` so every split holds every class."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLIT_NAMES}
    k = len(SPLIT_NAMES)
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        if idx.size < k:
            raise UserError(f"class {int(cls)} has {idx.size} jets; need at least {k} to fill train, val and test")
        bounds = np.rint(np.cumsum(fractions) * idx.size).astype(int)
        bounds[-1] = idx.size
        for i in range(k - 1):  # every split gets at least one jet of this class
            bounds[i] = min(max(bounds[i], (bounds[i - 1] if i else 0) + 1), idx.size - (k - 1 - i))
        for name, part in zip(SPLIT_NAMES, np.split(idx, bounds[:-1])):
            parts[name].append(part)
    return {name: np.sort(np.concatenate(v)).astype(np.int64) for name, v in parts.items()}


def _jet_dataset(
    data: dict[str, np.ndarray], n_leading: int, splits: dict[str, np.ndarray], meta: dict[str, Any]
) -> Dataset:
    """The Dataset view: x the leading constituents' 4-momenta, y the class, all constituents as extras."""
    return Dataset(
        x=data["constituents"][:, :n_leading].astype(np.float64),
        y=data["label"].astype(np.int64),
        splits=splits,
        x_rep={"type": "vector", "n": 4},
        y_rep={"type": "label", "classes": 2},
        true_algebra=so13_basis(),
        meta=meta,
        extras={k: data[k] for k in ("constituents", "n_constituents", "jet_pt", "jet_eta", "jet_mass")},
    )


def _require_extra(*modules: str) -> None:
    """A missing optional package is a setup problem: say how to install it rather than show a traceback."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"jets need {', '.join(missing)}: pip install 'liegan_core[jets]'")


def _physics_versions() -> dict[str, str]:
    """The event generator and jet clustering versions: they change the events a seed produces."""
    return {name: metadata.version(name) for name in ("pythia8mc", "fastjet")}


@register_generator("top_tagging")
def top_tagging(params: dict[str, Any], seed: int) -> Dataset:
    """All `n_chunks` chunks generated here in turn (small runs, tests); the pipeline runs one job per chunk."""
    p = resolve_params(params)
    with tempfile.TemporaryDirectory(prefix="top_tagging_") as tmp:
        paths = []
        for chunk in range(int(p["n_chunks"])):
            path = str(Path(tmp) / f"chunk_{chunk:04d}.npz")
            save_chunk(generate_chunk(p, seed, chunk), path)
            paths.append(path)
        return build_dataset(paths, p, seed)


def load_reference_h5(path: str | Path, n_leading: int = 2, max_constituents: int = 200) -> Dataset:
    """The public Top Tagging Reference dataset (one of its train/val/test .h5 files) as a Dataset.

    Reads the pandas HDF5 layout under key "table" with h5py, no pickle: the `fixed` format's
    blockN_items/blockN_values, or a `table` format whose compound rows name the columns; a
    `table` file with packed value blocks needs PyTables (`pip install tables`) and pandas.
    All rows go to one split, "all": the reference ships its splits as separate files.
    """
    _require_extra("h5py")
    import h5py

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: reference jet file not found")
    if not 1 <= n_leading <= max_constituents:
        raise UserError(f"n_leading ({n_leading}) must be between 1 and max_constituents ({max_constituents})")
    try:
        handle = h5py.File(path, "r")
    except OSError as e:
        raise UserError(f"{path}: not a readable HDF5 file ({e})") from e
    with handle:
        if "table" not in handle or not isinstance(handle["table"], h5py.Group):
            raise UserError(
                f"{path}: no group 'table'; expected the pandas HDF5 layout of the Top Tagging Reference dataset"
            )
        constituents, labels, total = _read_reference(path, handle["table"], max_constituents)
    n_const = (constituents[..., 0] > 0).sum(axis=1).astype(np.int32)
    pt = np.hypot(total[:, 1], total[:, 2])
    eta = np.arcsinh(np.divide(total[:, 3], pt, out=np.zeros_like(pt), where=pt > 0))
    data = {
        "constituents": constituents,
        "n_constituents": n_const,
        "label": labels,
        "jet_pt": pt.astype(np.float32),
        "jet_eta": eta.astype(np.float32),
        "jet_mass": invariant_mass(total[:, None, :]).astype(np.float32),
    }
    params = {"path": str(path), "n_leading": n_leading, "max_constituents": max_constituents}
    meta = provenance("top_tagging_reference", params, 0)
    meta["seed"] = None  # read from a file: nothing random
    meta.update(SYMMETRY_META)
    return _jet_dataset(data, n_leading, {"all": np.arange(len(labels), dtype=np.int64)}, meta)


def _read_reference(path: Path, group: Any, max_constituents: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Constituents [N, max_constituents, 4] float32, labels [N] int64 and the jets' summed 4-momenta [N, 4].

    Reads and sums in row batches: the training file holds ~1.2M jets (~4 GB as float32).
    """
    columns = [f"{c}_{i}" for i in range(max_constituents) for c in REFERENCE_COMPONENTS] + [REFERENCE_LABEL]
    if any(key.startswith("block") and key.endswith("_items") for key in group):
        n_rows, read = _fixed_format_reader(path, group, columns)
    elif "table" in group:
        n_rows, read = _table_format_reader(path, group, columns)
    else:
        raise UserError(f"{path}: group 'table' has neither pandas 'fixed' blocks nor a 'table' dataset")
    constituents = np.zeros((n_rows, max_constituents, 4), dtype=np.float32)
    labels = np.zeros(n_rows, dtype=np.int64)
    total = np.zeros((n_rows, 4))
    for start in range(0, n_rows, H5_ROWS_PER_READ):
        stop = min(start + H5_ROWS_PER_READ, n_rows)
        values = read(start, stop)
        p4 = values[:, :-1].reshape(stop - start, max_constituents, 4)
        constituents[start:stop] = p4
        total[start:stop] = p4.sum(axis=1)
        labels[start:stop] = values[:, -1]
    return constituents, labels, total


def _fixed_format_reader(path: Path, group: Any, columns: list[str]) -> tuple[int, Callable[[int, int], np.ndarray]]:
    """Locate each column in pandas' fixed-format blocks: blockN_items names blockN_values' columns [rows, cols]."""
    where: dict[str, tuple[str, int]] = {}
    n_rows = 0
    for key in group:
        if not (key.startswith("block") and key.endswith("_items")):
            continue
        values_key = key[: -len("_items")] + "_values"
        names = [s.decode() if isinstance(s, bytes) else str(s) for s in group[key][()]]
        if values_key not in group or group[values_key].ndim != 2 or group[values_key].shape[1] != len(names):
            raise UserError(f"{path}: pandas block '{key}' has no matching [rows, {len(names)}] '{values_key}'")
        n_rows = group[values_key].shape[0]
        where.update({name: (values_key, i) for i, name in enumerate(names)})
    _require_columns(path, columns, where)
    needed: dict[str, list[tuple[int, int]]] = {}
    for out_col, name in enumerate(columns):
        block, i = where[name]
        needed.setdefault(block, []).append((out_col, i))

    def read(start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, len(columns)), dtype=np.float64)
        for block, pairs in needed.items():
            out_cols, idx = np.array(pairs).T
            out[:, out_cols] = group[block][start:stop][:, idx]
        return out

    return int(n_rows), read


def _table_format_reader(path: Path, group: Any, columns: list[str]) -> tuple[int, Callable[[int, int], np.ndarray]]:
    """Pandas' table format: named compound fields via h5py, packed value blocks via pandas + PyTables."""
    table = group["table"]
    fields = set(table.dtype.names or ())
    n_rows = int(table.shape[0])
    if set(columns) <= fields:

        def read(start: int, stop: int) -> np.ndarray:
            rows = table[start:stop]
            return np.stack([rows[name].astype(np.float64) for name in columns], axis=1)

        return n_rows, read
    if not any(name.startswith("values_block_") for name in fields):
        _require_columns(path, columns, fields)
    try:
        import pandas as pd
        import tables  # noqa: F401  (pandas.read_hdf needs it)
    except ImportError as e:
        raise UserError(
            f"{path}: pandas 'table' format with packed value blocks; its column names can only be read with "
            "PyTables: `pip install tables`, or re-save the file with format='fixed'"
        ) from e
    _require_columns(path, columns, set(pd.read_hdf(path, "table", stop=0).columns))
    return n_rows, lambda start, stop: pd.read_hdf(path, "table", columns=columns, start=start, stop=stop).to_numpy(
        dtype=np.float64
    )


def _require_columns(path: Path, columns: list[str], available: Any) -> None:
    """Name the file and the first missing column, so a wrong or truncated file is obvious."""
    missing = [c for c in columns if c not in available]
    if missing:
        raise UserError(
            f"{path}: missing column '{missing[0]}' ({len(missing)} missing in all); expected the Top Tagging "
            f"Reference columns E_i, PX_i, PY_i, PZ_i for i < max_constituents and '{REFERENCE_LABEL}'"
        )
