"""Symmetry discovery on the user's own data: `liegan discover --data FILE.npz|FILE.csv --out DIR`.

The user says how x and y transform (flags or a `--spec` YAML validated against
schemas/user_spec.schema.yaml; flags win), optionally which algebra to compare with, and gets the
usual run folder (generators.npz, metrics.json, log.csv) plus a human-readable summary.txt.
Every problem with the file, its shapes or the flags is a one-line UserError naming the culprit.
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .config import deep_merge, read_yaml, validate_schema
from .data.dataset import Dataset
from .errors import UserError
from .io import config_hash, sha256, write_json, write_text
from .lie import algebra_similarity, closure_error, gl_basis, repeat_block, so13_basis, so2_generator, so_basis
from .methods.base import SearchSpace

DEFAULT_EPOCHS = 20
DEFAULT_BATCH_SIZE = 64
CLOSURE_TOLERANCE = 0.1
NAMED_ALGEBRAS = ("so2", "so3", "so13", "gl")


def discover_user_data(args: argparse.Namespace) -> None:
    """The `discover` subcommand without --task/--config: load, validate, run, summarise."""
    from .methods import RunContext, get_method
    from .runner import run_discovery

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    spec = resolve_spec(args)
    if args.method == "oracle" and not spec.get("compare"):
        raise UserError("--method oracle reports the --compare algebra itself; give --compare")
    try:
        method = get_method(args.method)
    except UserError as e:
        raise UserError(f"--method: {e}") from None
    data_path = Path(args.data)
    ds, origin = build_dataset(data_path, spec)
    space_cfg = search_space_config(spec.get("search_space") or {}, ds.n)
    space = SearchSpace.from_config(space_cfg)
    comparisons = [(name, *compare_algebra(name, ds.n)) for name in spec.get("compare") or []]
    params = method_params(method, args.method, spec.get("method") or {})
    reason = method.skip(ds.split("train"), space)
    if reason:
        raise UserError(f"--method {args.method} cannot run on {data_path}: {reason}")
    cfg = {
        "task": "user_data",
        "data": {"file": str(data_path), "sha256": sha256(data_path), "x_rep": ds.x_rep, "y_rep": ds.y_rep,
                 "origin": origin},
        "search_space": space_cfg,
        "methods": {args.method: params},
    }
    discard_stale_checkpoint(out, cfg, args.method, args.seed)
    ctx = RunContext(device=args.device or "cpu", progress=not args.no_progress)
    truth = comparisons[0][2] if comparisons else None
    res = run_discovery(cfg, args.method, args.seed, ds, out, ctx, truth=truth)
    with np.load(out / "generators.npz", allow_pickle=False) as z:
        gens = z["generators"]
    text = summary_text(ds, origin, args.method, args.seed, params, space, gens, comparisons, res["run_seconds"])
    write_text(out / "summary.txt", text)
    print(text, end="")


# ---------------------------------------------------------------- spec: YAML + flags


def resolve_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The --spec YAML (validated, errors name its key path) with the command-line flags merged over it."""
    for flag in ("x_dim", "y_dim", "channels", "block", "epochs", "batch_size"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UserError(f"--{flag.replace('_', '-')}: must be a positive integer, got {value}")
    spec: dict[str, Any] = {}
    if args.spec:
        spec = validate_schema(read_yaml(args.spec), "user_spec", str(args.spec))
    flags: dict[str, Any] = {}
    for side in ("x", "y"):
        part = {
            "rep": getattr(args, f"{side}_rep"),
            "dim": getattr(args, f"{side}_dim"),
            "key": getattr(args, f"{side}_key"),
            "columns": split_names(getattr(args, f"{side}_cols"), f"--{side}-cols"),
        }
        part = {k: v for k, v in part.items() if v is not None}
        if part:
            flags[side] = part
    if args.pairs_from_trajectories:
        flags["pairs_from_trajectories"] = args.pairs_from_trajectories
    if args.permute:
        flags["permute"] = parse_permutation(args.permute)
    if args.compare:
        flags["compare"] = list(args.compare)
    space = {k: v for k, v in (("channels", args.channels), ("block", args.block)) if v is not None}
    if space:
        flags["search_space"] = space
    sets = parse_sets(args.set or [])
    if sets:
        validate_schema({"method": sets}, "user_spec", "--set")
    method = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size)) if v is not None}
    method.update(sets)
    if method:
        flags["method"] = method
    return deep_merge(spec, flags)


def split_names(text: str | None, flag: str) -> list[str] | None:
    if text is None:
        return None
    names = [s.strip() for s in text.split(",")]
    if not all(names):
        raise UserError(f"{flag}: expected comma-separated column names like a,b,c, got '{text}'")
    return names


def parse_permutation(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",")]
    except ValueError:
        raise UserError(f"--permute: expected comma-separated integers like 0,2,1,3, got '{text}'") from None


def parse_sets(items: list[str]) -> dict[str, Any]:
    """--set key=value pairs; values parsed as YAML (so [64, 64] and true work), and 1e-3 as a number.

    (YAML 1.1 reads 1e-3, without a dot, as a string.)
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set: expected key=value (e.g. lambda_identity=0.5), got '{item}'")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            raise UserError(f"--set {key.strip()}: cannot parse value '{value}'") from None
        if isinstance(parsed, str):
            with contextlib.suppress(ValueError):
                parsed = float(parsed)
        out[key.strip()] = parsed
    return out


def method_params(method: Any, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Budget defaults filled in; keys the method does not know are an error (typos otherwise do nothing)."""
    from .methods import unknown_params

    for key, hint in unknown_params(name, params):
        raise UserError(f"method.{key} (--set/--spec): unknown hyperparameter of '{name}'{hint}")
    return {"epochs": DEFAULT_EPOCHS, "batch_size": DEFAULT_BATCH_SIZE, **params}


def search_space_config(space: dict[str, Any], n: int) -> dict[str, Any]:
    """The search space at the data's vector dimension n, with the checks that depend on n."""
    if space.get("n") is not None and space["n"] != n:
        raise UserError(
            f"search_space.n = {space['n']} (--spec) differs from the data's vector dimension {n} (--x-dim)"
        )
    from .config import search_space_problems

    for key, problem in search_space_problems(space, n):
        where = f"--block {space['block']} (search_space.block)" if key == "block" else f"search_space.{key} (--spec)"
        raise UserError(f"{where}: {problem}")
    defaults = {"n": n, "channels": 1, "block": None, "coefficients": {"distribution": "normal", "sigma": 1.0}}
    return defaults | space


def discard_stale_checkpoint(out: Path, cfg: dict[str, Any], method: str, seed: int) -> None:
    """Resume only a run with the same data and settings: a checkpoint from another config would be reused."""
    stamp = config_hash({"cfg": cfg, "method": method, "seed": seed})
    marker, ckpt = out / "user_run.json", out / "checkpoint.pt"
    previous = json.loads(marker.read_text()).get("config_hash") if marker.exists() else None
    if ckpt.exists() and previous != stamp:
        ckpt.unlink()
        print(f"liegan: note: removed {ckpt} from a run with other data or settings", file=sys.stderr)
    write_json(marker, {"config_hash": stamp})


# ---------------------------------------------------------------- loading the data


def build_dataset(path: Path, spec: dict[str, Any]) -> tuple[Dataset, dict[str, Any]]:
    """The user's file as a Dataset (all rows in split 'train') and a description of where x and y came from."""
    if not path.exists():
        raise UserError(f"--data {path}: file not found")
    if not path.is_file():
        raise UserError(f"--data {path}: not a file")
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".csv"):
        raise UserError(f"--data {path}: unsupported file type '{path.suffix}'; expected .npz or .csv")
    if path.stat().st_size == 0:
        raise UserError(f"--data {path}: the file is empty")
    xs, ys = spec.get("x") or {}, spec.get("y") or {}
    trajectories = spec.get("pairs_from_trajectories")
    if suffix == ".npz":
        x2, y2, origin = load_npz(path, xs, ys, trajectories)
    else:
        if trajectories:
            raise UserError(f"--pairs-from-trajectories needs an .npz file with a [orbits, steps, d] array, got {path}")
        x2, y2, origin = load_csv(path, xs, ys)
    if x2.shape[0] != y2.shape[0]:
        raise UserError(f"--data {path}: x has {x2.shape[0]} rows but y has {y2.shape[0]}; they must match row for row")
    y_rep = ys.get("rep") or ("vector" if trajectories else "scalar")
    if spec.get("permute") is not None:
        origin["columns reordered by"] = ",".join(map(str, spec["permute"]))
        x2 = permute_columns(x2, spec["permute"], "x")
        if y_rep == "vector":
            y2 = permute_columns(y2, spec["permute"], "y")
    x_rep_type = xs.get("rep") or "vector"
    if x_rep_type != "vector" and y_rep != "vector":
        raise UserError("--x-rep/--y-rep: nothing transforms; at least one of x and y must be a vector")
    n = None
    if x_rep_type == "vector":
        n = vector_dim(x2, xs.get("dim"), "x")
        x = x2.reshape(x2.shape[0], -1, n)
    else:
        x = x2
    if y_rep == "vector":
        y_dim = ys.get("dim") or n
        if n is not None and y_dim != n:
            raise UserError(f"--y-dim {y_dim} must equal --x-dim {n}: the same matrices act on x and y")
        n_y = vector_dim(y2, y_dim, "y")
        y = y2.reshape(y2.shape[0], -1, n_y)
        yr: dict[str, Any] = {"type": "vector", "n": n_y}
    elif y_rep == "label":
        y, yr = labels(y2, path)
    else:
        y, yr = y2, {"type": "scalar"}
    # a scalar x still records n (the y vectors'): Dataset.n and the search space read it from x_rep
    x_rep = {"type": x_rep_type, "n": n if n is not None else yr["n"]}
    ds = Dataset(
        x=x, y=y, splits={"train": np.arange(x.shape[0], dtype=np.int64)}, x_rep=x_rep, y_rep=yr,
        meta={"source": str(path), "origin": origin},
    )
    return ds, origin


def load_npz(
    path: Path, xs: dict[str, Any], ys: dict[str, Any], trajectories: str | None
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """x and y as 2-D float arrays [rows, columns] from an npz (pickles refused)."""
    if xs.get("columns") or ys.get("columns"):
        raise UserError(f"--x-cols/--y-cols name CSV columns, but {path} is an .npz; use --x-key/--y-key")
    if not zipfile.is_zipfile(path):
        raise UserError(f"--data {path}: not an .npz file (an .npz is a zip archive of named arrays, from np.savez)")
    try:
        z = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise UserError(f"--data {path}: not a readable .npz file ({e})") from None
    with z:
        if not z.files:
            raise UserError(f"--data {path}: the .npz holds no arrays")
        if trajectories:
            if xs.get("key") or ys.get("key"):
                raise UserError("--pairs-from-trajectories builds x and y itself; drop --x-key/--y-key")
            traj = npz_array(z, path, trajectories, "--pairs-from-trajectories")
            if traj.ndim != 3 or traj.shape[1] < 2:
                raise UserError(
                    f"--pairs-from-trajectories {trajectories}: expected an array [orbits, steps >= 2, d] in {path}, "
                    f"got shape {list(traj.shape)}"
                )
            check_finite(traj.reshape(traj.shape[0], -1), f"--data {path}: array '{trajectories}'", "trajectory")
            d = traj.shape[2]
            origin = {"pairs": f"x = state t, y = state t+1 of array '{trajectories}' {list(traj.shape)}"}
            pairs = traj.astype(np.float64)
            return pairs[:, :-1].reshape(-1, d), pairs[:, 1:].reshape(-1, d), origin
        xk, yk = xs.get("key", "x"), ys.get("key", "y")
        x = npz_array(z, path, xk, "--x-key")
        y = npz_array(z, path, yk, "--y-key")
    x2, y2 = as_rows(x, path, xk), as_rows(y, path, yk)
    check_finite(x2, f"--data {path}: array '{xk}'", "row")
    check_finite(y2, f"--data {path}: array '{yk}'", "row")
    return x2, y2, {"x": f"array '{xk}' {list(x.shape)}", "y": f"array '{yk}' {list(y.shape)}"}


def npz_array(z: Any, path: Path, key: str, flag: str) -> np.ndarray:
    """One named numeric array of an npz; object (pickled) and non-numeric arrays are refused."""
    if key not in z.files:
        close = difflib.get_close_matches(key, z.files, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UserError(f"--data {path}: no array '{key}' ({flag}){hint}; arrays in the file: {sorted(z.files)}")
    try:
        arr = z[key]
    except ValueError:
        raise UserError(
            f"--data {path}: array '{key}' holds pickled Python objects, which are never loaded; "
            "save it as a plain numeric array (np.asarray(a, dtype=float))"
        ) from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise UserError(f"--data {path}: array '{key}' cannot be read ({e}); the file is damaged") from None
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise UserError(f"--data {path}: array '{key}' has dtype {arr.dtype}; expected numbers (float or int)")
    return arr


def as_rows(arr: np.ndarray, path: Path, key: str) -> np.ndarray:
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise UserError(f"--data {path}: array '{key}' is empty (shape {list(arr.shape)})")
    return arr.reshape(arr.shape[0], -1).astype(np.float64)


def load_csv(path: Path, xs: dict[str, Any], ys: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """x and y from named numeric columns of a CSV with a header line; bad cells are named by line and column."""
    import pandas as pd

    if xs.get("key") or ys.get("key"):
        raise UserError(f"--x-key/--y-key name npz arrays, but {path} is a CSV; use --x-cols/--y-cols")
    x_cols, y_cols = xs.get("columns"), ys.get("columns")
    if not x_cols or not y_cols:
        raise UserError(f"--data {path}: a CSV needs --x-cols and --y-cols (comma-separated column names)")
    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise UserError(f"--data {path}: the CSV is empty (expected a header line and data rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise UserError(f"--data {path}: not a readable CSV ({str(e).strip()})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise UserError(f"--data {path}: the CSV has a header but no data rows")
    names = list(frame.columns)
    for flag, cols in (("--x-cols", x_cols), ("--y-cols", y_cols)):
        for col in cols:
            if col not in names:
                close = difflib.get_close_matches(col, names, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise UserError(f"--data {path}: no column '{col}' ({flag}){hint}; columns: {names}")
    x2, y2 = csv_numbers(frame, x_cols, path), csv_numbers(frame, y_cols, path)
    return x2, y2, {"x": f"columns {','.join(x_cols)}", "y": f"columns {','.join(y_cols)}"}


def csv_numbers(frame: Any, cols: list[str], path: Path) -> np.ndarray:
    """The columns as float64 [rows, len(cols)]; the first non-numeric or missing/NaN/inf cell is named."""
    import pandas as pd

    out = np.empty((len(frame), len(cols)))
    for j, col in enumerate(cols):
        raw = frame[col]
        num = pd.to_numeric(raw, errors="coerce")
        bad = num.isna() & raw.notna()
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise UserError(
                f"--data {path}: column '{col}' is not numeric: line {i + 2} holds '{raw.iloc[i]}' "
                f"({int(bad.sum())} non-numeric cells in all)"
            )
        out[:, j] = num.to_numpy(dtype=np.float64)
    check_finite(out, f"--data {path}", "line", offset=2, columns=cols)
    return out


def check_finite(arr: np.ndarray, source: str, unit: str, offset: int = 0, columns: list[str] | None = None) -> None:
    """UserError naming the first row (or CSV line) holding NaN, inf or an empty cell."""
    bad = ~np.isfinite(arr)
    rows = bad.any(axis=1)
    if rows.any():
        i = int(np.argmax(rows))
        where = f" column '{columns[int(np.argmax(bad[i]))]}'" if columns else ""
        raise UserError(
            f"{source}: {unit} {i + offset}{where} has a missing, NaN or infinite value "
            f"({int(rows.sum())} such rows in all); drop or fix those rows"
        )


def permute_columns(arr: np.ndarray, perm: list[int], name: str) -> np.ndarray:
    if sorted(perm) != list(range(arr.shape[1])):
        raise UserError(
            f"--permute {','.join(map(str, perm))}: must be a permutation of 0..{arr.shape[1] - 1} "
            f"(the {arr.shape[1]} columns of {name})"
        )
    return arr[:, perm]


def vector_dim(arr: np.ndarray, dim: int | None, name: str) -> int:
    """The vector dimension: --x-dim (or --y-dim) where given, else all columns form one vector."""
    cols = arr.shape[1]
    dim = dim or cols
    if cols % dim:
        raise UserError(
            f"--{name}-dim {dim} ({name}.dim): does not divide the {cols} columns of {name} "
            f"({name} is read as several vectors of dimension {dim})"
        )
    return dim


def labels(y2: np.ndarray, path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Integer class labels 0..C-1 from a single column."""
    if y2.shape[1] != 1:
        raise UserError(f"--y-rep label: y must be one column of class labels, {path} gives {y2.shape[1]}")
    y = y2[:, 0]
    if np.any(y != np.round(y)) or y.min() < 0:
        i = int(np.argmax((y != np.round(y)) | (y < 0)))
        raise UserError(f"--y-rep label: labels must be integers >= 0; row {i} of {path} holds {y[i]}")
    y = y.astype(np.int64)
    return y, {"type": "label", "classes": int(y.max()) + 1}


# ---------------------------------------------------------------- algebras to compare with


def compare_algebra(name: str, n: int) -> tuple[str, np.ndarray]:
    """(description, basis [k, n, n]) for a --compare name at the data's vector dimension n."""
    if name.lower().endswith((".npy", ".npz")):
        return algebra_from_file(Path(name), n)
    if name == "so2":
        if n % 2:
            raise UserError(f"--compare so2: needs an even vector dimension (planes of 2), the data's is n = {n}")
        return f"so(2): kron(I_{n // 2}, J), J = [[0, -1], [1, 0]]", repeat_block(so2_generator(), n // 2)[None]
    if name == "so3":
        if n % 3:
            raise UserError(f"--compare so3: needs a vector dimension of 3 or a multiple of 3, the data's is n = {n}")
        return f"so(3): kron(I_{n // 3}, so(3) basis)", repeat_block(so_basis(3), n // 3)
    if name == "so13":
        if n % 4:
            raise UserError(f"--compare so13: needs a vector dimension of 4 or a multiple of 4, the data's is n = {n}")
        return f"so(1,3): kron(I_{n // 4}, Lorentz basis)", repeat_block(so13_basis(), n // 4)
    if name == "gl":
        return f"gl({n}): all {n}x{n} matrices", gl_basis(n)
    close = difflib.get_close_matches(name, NAMED_ALGEBRAS, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise UserError(
        f"--compare {name}: unknown algebra{hint}; expected one of {list(NAMED_ALGEBRAS)} or a .npy/.npz file"
    )


def algebra_from_file(path: Path, n: int) -> tuple[str, np.ndarray]:
    """A basis [k, n, n] (or one [n, n]) from .npy, or from .npz (array 'generators', or its only array)."""
    if not path.exists():
        raise UserError(f"--compare {path}: file not found")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            arr = loaded
        else:
            with loaded as z:
                if "generators" not in z.files and len(z.files) != 1:
                    raise UserError(
                        f"--compare {path}: expected an array 'generators' or a single array, found {z.files}"
                    )
                arr = z["generators" if "generators" in z.files else z.files[0]]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise UserError(f"--compare {path}: not a readable numeric .npy/.npz ({e})") from None
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise UserError(f"--compare {path}: array has dtype {arr.dtype}; expected numbers")
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (n, n):
        raise UserError(
            f"--compare {path}: expected an array [k, {n}, {n}] (the data's n = {n}), got {list(arr.shape)}"
        )
    if not np.isfinite(arr).all() or not np.abs(arr).sum():
        raise UserError(f"--compare {path}: the algebra must be finite and non-zero")
    return f"{path.name}: {arr.shape[0]} generator(s)", arr


# ---------------------------------------------------------------- summary


def normalised(g: np.ndarray) -> np.ndarray:
    """Unit Frobenius norm, sign fixed so the first entry (row-major) within 1% of the largest |entry| is positive.

    The 1% tolerance keeps the sign stable between runs when two entries tie (as in a rotation).
    """
    norm = np.linalg.norm(g)
    if norm == 0:
        return g
    g = g / norm
    flat = g.ravel()
    lead = flat[np.argmax(np.abs(flat) >= 0.99 * np.abs(flat).max())]
    return g if lead > 0 else -g


def matrix_lines(m: np.ndarray, indent: str = "    ") -> list[str]:
    return [indent + "[" + " ".join(f"{v:7.3f}" for v in row) + "]" for row in m]


def summary_text(
    ds: Dataset, origin: dict[str, Any], method: str, seed: int, params: dict[str, Any], space: SearchSpace,
    gens: np.ndarray, comparisons: list[tuple[str, str, np.ndarray]], seconds: float,
) -> str:
    """The human-readable report: data, method and budget, generators, comparison and closure."""
    lines = [f"liegan discovery on {ds.meta['source']}", ""]
    lines.append(f"data: {ds.x.shape[0]} rows")
    for name, arr, rep in (("x", ds.x, ds.x_rep), ("y", ds.y, ds.y_rep)):
        kind = rep["type"] + (f" of dimension {rep['n']}" if rep["type"] == "vector" else "")
        kind += f" ({rep['classes']} classes)" if rep["type"] == "label" else ""
        lines.append(f"  {name}: shape {list(arr.shape)}, {kind}")
    lines.append("  from: " + "; ".join(f"{key}: {value}" for key, value in origin.items()))
    hp = {k: v for k, v in params.items() if k not in ("epochs", "batch_size")}
    lines += [
        "",
        f"method: {method}, seed {seed}, {params['epochs']} epochs, batch size {params['batch_size']}, {seconds:.1f} s",
        f"  hyperparameters: {hp if hp else 'method defaults'}",
        f"search space: n = {space.n}, {space.channels} channel(s), "
        + (f"{space.block}x{space.block} block repeated {space.copies} times" if space.block else "full n x n matrices")
        + (", masked" if space.mask is not None else "")
        + f", coefficients {space.coefficients}",
        "",
    ]
    m = space.matrix_size
    shown = gens[:, :m, :m]
    what = f"the {m}x{m} block (acts as kron(I_{space.copies}, block))" if space.copies > 1 else "the generators"
    lines.append(f"learned {what}, {gens.shape[0]} channel(s):")
    for i, g in enumerate(shown):
        lines.append(f"  L{i + 1} normalised (unit Frobenius norm, sign: largest entry positive), rounded:")
        lines += matrix_lines(normalised(g))
        lines.append(f"  L{i + 1} raw (norm {np.linalg.norm(g):.3f}):")
        lines += matrix_lines(g)
    lines.append("")
    for name, description, algebra in comparisons:
        if gens.shape[0]:
            sim = algebra_similarity(gens, algebra)
        else:
            sim = {"algebra_similarity": 0.0, "worst_angle_deg": 90.0}
        measure = "|cos|" if algebra.shape[0] == 1 else "mean cos^2 over its dimensions"
        lines.append(
            f"compared with {name} = {description}: similarity {sim['algebra_similarity']:.4f} ({measure}), "
            f"worst principal angle {sim['worst_angle_deg']:.1f} deg"
        )
    if not comparisons:
        lines.append("no --compare algebra given: no similarity computed")
    err = closure_error(gens) if gens.shape[0] else 0.0
    closes = "yes" if err <= CLOSURE_TOLERANCE else "no"
    note = " (a single generator always closes)" if gens.shape[0] <= 1 else ""
    lines.append(
        f"closure under the commutator: closure_error {err:.4f} -> closes: {closes} "
        f"(tolerance {CLOSURE_TOLERANCE}){note}"
    )
    return "\n".join(lines) + "\n"
