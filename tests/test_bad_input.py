"""Bad input through the real entry point: exit code 2, one line naming the key/file/flag, no traceback.

Each case builds its own bad profile, benchmark, dataset or data file under tmp_path and runs
`liegan_core.cli.main`; a few go through the installed `liegan` command in a subprocess.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import yaml

from liegan_core.cli import main
from liegan_core.data.dataset import Dataset

REPO = Path(__file__).resolve().parents[1]
TWO_BODY = REPO / "benchmarks" / "two_body.yaml"
Build = Callable[[Path], list[str]]


# ---------------------------------------------------------------- builders


def profile(
    tmp: Path, edit_task: Callable[[dict[str, Any]], None] | None = None, **fields: Any
) -> Path:
    """A profile file in tmp with benchmarks_dir -> tmp/benchmarks holding an (edited) copy of two_body.yaml."""
    bdir = tmp / "benchmarks"
    bdir.mkdir(exist_ok=True)
    task = yaml.safe_load(TWO_BODY.read_text())
    if edit_task:
        edit_task(task)
    (bdir / "two_body.yaml").write_text(yaml.safe_dump(task))
    prof = {"profile": "bad", "benchmarks_dir": str(bdir), "tasks": ["two_body"], "seeds": [0], **fields}
    path = tmp / "profile.yaml"
    path.write_text(yaml.safe_dump(prof))
    return path


def validate(tmp: Path, edit_task: Callable[[dict[str, Any]], None] | None = None, **fields: Any) -> list[str]:
    return ["validate", "--profile", str(profile(tmp, edit_task, **fields))]


def override(methods: dict[str, Any] | None = None, search_space: dict[str, Any] | None = None) -> dict[str, Any]:
    over: dict[str, Any] = {}
    if methods:
        over["methods"] = methods
    if search_space:
        over["search_space"] = search_space
    return {"two_body": over}


def raw_profile(tmp: Path, text: str) -> list[str]:
    path = tmp / "profile.yaml"
    path.write_text(text)
    return ["validate", "--profile", str(path)]


def dataset_file(tmp: Path) -> Path:
    """A small valid dataset (npz + sidecar) of the two_body kind."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 1, 8)), rng.normal(size=(12, 1, 8))
    ds = Dataset(
        x=x, y=y, splits={"train": np.arange(8), "test": np.arange(8, 12)},
        x_rep={"type": "vector", "n": 8}, y_rep={"type": "vector", "n": 8},
    )
    path = tmp / "two_body.npz"
    ds.save(path)
    return path


def discover_task(tmp: Path, data: Path) -> list[str]:
    return ["discover", "--task", "two_body", "--profile", str(profile(tmp)), "--data", str(data),
            "--out", str(tmp / "run")]


def corrupt(tmp: Path) -> list[str]:
    path = dataset_file(tmp)
    raw = bytearray(path.read_bytes())
    for i in range(len(raw) // 2, len(raw) // 2 + 8):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))
    return discover_task(tmp, path)


def truncate(tmp: Path) -> list[str]:
    path = dataset_file(tmp)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return discover_task(tmp, path)


def no_sidecar(tmp: Path) -> list[str]:
    path = dataset_file(tmp)
    path.with_suffix(".json").unlink()
    return discover_task(tmp, path)


def bad_sidecar(tmp: Path) -> list[str]:
    path = dataset_file(tmp)
    path.with_suffix(".json").write_text("{not json")
    return discover_task(tmp, path)


def rotation_csv(tmp: Path, rows: int = 20) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 2))
    lines = ["x1,x2,y"] + [f"{a},{b},{a * a + b * b}" for a, b in x]
    path = tmp / "data.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def user(tmp: Path, data: Path, *flags: str) -> list[str]:
    return ["discover", "--data", str(data), "--out", str(tmp / "run"), *flags]


def csv_run(*flags: str, edit: Callable[[list[str]], None] | None = None) -> Build:
    """A discover run on a small CSV (lines optionally edited), with default column flags unless given."""

    def build(tmp: Path) -> list[str]:
        path = rotation_csv(tmp)
        if edit:
            lines = path.read_text().splitlines()
            edit(lines)
            path.write_text("\n".join(lines) + "\n")
        cols = [] if "--x-cols" in flags else ["--x-cols", "x1,x2", "--y-cols", "y"]
        return user(tmp, path, *cols, *flags)

    return build


def npz_run(arrays: dict[str, Any], *flags: str) -> Build:
    def build(tmp: Path) -> list[str]:
        path = tmp / "data.npz"
        np.savez(path, **arrays)
        return user(tmp, path, *flags)

    return build


def text_file(name: str, text: str, *flags: str) -> Build:
    def build(tmp: Path) -> list[str]:
        path = tmp / name
        path.write_text(text)
        return user(tmp, path, *flags)

    return build


def spec_run(spec: str, *flags: str) -> Build:
    def build(tmp: Path) -> list[str]:
        path = tmp / "spec.yaml"
        path.write_text(spec)
        return user(tmp, rotation_csv(tmp), "--spec", str(path), "--x-cols", "x1,x2", "--y-cols", "y", *flags)

    return build


def compare_file(tmp: Path) -> list[str]:
    np.save(tmp / "algebra.npy", np.zeros((1, 3, 3)) + np.eye(3))
    return user(tmp, rotation_csv(tmp), "--x-cols", "x1,x2", "--y-cols", "y", "--compare", str(tmp / "algebra.npy"))


def set_task(**changes: Any) -> Callable[[dict[str, Any]], None]:
    """Edit a benchmark dict: 'a.b' keys set nested values; a value of None deletes the key."""

    def edit(task: dict[str, Any]) -> None:
        for dotted, value in changes.items():
            *parents, last = dotted.split(".")
            node = task
            for p in parents:
                node = node[p]
            if value is None:
                del node[last]
            else:
                node[last] = value

    return edit


RNG = np.random.default_rng(1)
X8 = RNG.normal(size=(10, 8))
X2 = RNG.normal(size=(10, 2))
Y1 = RNG.normal(size=(10, 1))

# id -> (builder, expected fragments of the error line)
CASES: dict[str, tuple[Build, list[str]]] = {
    # profile / benchmark configs (liegan validate)
    "profile_unknown_key": (lambda t: validate(t, thread=2), ["unknown key 'thread'", "did you mean 'threads'"]),
    "profile_seeds_not_int": (lambda t: validate(t, seeds=[0, "a"]), ["at 'seeds.1'", "'a' is not of type 'integer'"]),
    "profile_missing_file": (lambda t: ["validate", "--profile", str(t / "nope.yaml")], ["nope.yaml", "file not found"]),
    "profile_not_yaml": (lambda t: raw_profile(t, "tasks: [two_body\nseeds: {"), ["profile.yaml", "not valid YAML"]),
    "profile_is_list": (lambda t: raw_profile(t, "- two_body\n- 0\n"), ["profile.yaml", "expected a mapping"]),
    "profile_unknown_task": (lambda t: validate(t, tasks=["two_bdy"]), ["unknown task 'two_bdy'", "did you mean 'two_body'"]),
    "negative_epochs": (
        lambda t: validate(t, overrides=override(methods={"liegan": {"epochs": -1}})),
        ["at 'methods.liegan.epochs'", "-1 is less than the minimum of 1"],
    ),
    "zero_channels": (
        lambda t: validate(t, overrides=override(search_space={"channels": 0})),
        ["at 'search_space.channels'", "minimum of 1"],
    ),
    "negative_lambda": (
        lambda t: validate(t, overrides=override(methods={"liegan": {"lambda_identity": -0.5}})),
        ["at 'methods.liegan.lambda_identity'", "minimum of 0"],
    ),
    "sigma_zero": (
        lambda t: validate(t, overrides=override(search_space={"coefficients": {"sigma": 0}})),
        ["at 'search_space.coefficients.sigma'"],
    ),
    "unknown_method": (
        lambda t: validate(t, overrides=override(methods={"lieganx": {"epochs": 1}})),
        ["at 'methods.lieganx'", "did you mean 'liegan'"],
    ),
    "unknown_generator": (
        lambda t: validate(t, set_task(**{"data.generator": "two_bdy"})),
        ["at 'data.generator'", "unknown data generator 'two_bdy'", "did you mean 'two_body'"],
    ),
    "mask_wrong_shape": (
        lambda t: validate(t, overrides=override(search_space={"mask": [[1, 1, 1], [1, 1, 1]]})),
        ["at 'search_space.mask'", "2x2"],
    ),
    "block_not_dividing_n": (
        lambda t: validate(t, overrides=override(search_space={"block": 3})),
        ["at 'search_space.block'", "must divide search_space.n = 8"],
    ),
    "missing_search_space": (
        lambda t: validate(t, set_task(search_space=None)),
        ["two_body.yaml", "'search_space' is a required property"],
    ),
    "coefficients_low_ge_high": (
        lambda t: validate(t, overrides=override(
            search_space={"coefficients": {"distribution": "uniform", "low": 1.0, "high": 1.0}})),
        ["at 'search_space.coefficients'", "low must be below high"],
    ),
    "task_name_mismatch": (lambda t: validate(t, set_task(task="other")), ["at 'task'", "declares task 'other'"]),
    # task datasets (liegan discover --task)
    "dataset_corrupted": (corrupt, ["two_body.npz", "checksum does not match"]),
    "dataset_truncated": (truncate, ["two_body.npz", "corrupted or truncated"]),
    "dataset_missing_sidecar": (no_sidecar, ["sidecar two_body.json is missing"]),
    "dataset_sidecar_not_json": (bad_sidecar, ["two_body.json", "not valid JSON"]),
    "dataset_missing": (lambda t: discover_task(t, t / "absent.npz"), ["absent.npz", "dataset file not found"]),
    "config_json_missing": (
        lambda t: ["discover", "--config", str(t / "c.json"), "--data", "d.npz", "--out", str(t)],
        ["c.json", "config file not found"],
    ),
    # the user's own data (liegan discover --data FILE)
    "user_missing_file": (lambda t: user(t, t / "mine.csv", "--x-cols", "a", "--y-cols", "b"), ["--data", "mine.csv", "file not found"]),
    "user_wrong_extension": (text_file("mine.txt", "1,2\n"), ["mine.txt", "expected .npz or .csv"]),
    "user_empty_file": (text_file("empty.csv", "", "--x-cols", "a", "--y-cols", "b"), ["empty.csv", "empty"]),
    "user_header_only": (text_file("h.csv", "a,b\n", "--x-cols", "a", "--y-cols", "b"), ["h.csv", "no data rows"]),
    "user_missing_column": (csv_run("--x-cols", "x1,x_2", "--y-cols", "y"), ["no column 'x_2'", "--x-cols", "did you mean 'x2'"]),
    "user_nan_row": (csv_run(edit=lambda lines: lines.__setitem__(4, "0.5,nan,1.0")), ["line 5", "column 'x2'", "NaN"]),
    "user_non_numeric": (
        csv_run(edit=lambda lines: lines.__setitem__(3, "0.5,abc,1.0")),
        ["column 'x2' is not numeric", "line 4", "'abc'"],
    ),
    "user_bad_x_dim": (csv_run("--x-dim", "3"), ["--x-dim 3", "does not divide the 2 columns of x"]),
    "user_bad_compare_name": (csv_run("--compare", "so22"), ["--compare so22", "unknown algebra", "did you mean 'so2'"]),
    "user_compare_wrong_dim": (csv_run("--compare", "so3"), ["--compare so3", "n = 2"]),
    "user_compare_file_shape": (compare_file, ["--compare", "algebra.npy", "[k, 2, 2]"]),
    "user_block_not_dividing": (csv_run("--block", "3"), ["--block 3", "must divide", "n = 2"]),
    "user_unknown_method": (csv_run("--method", "lieganx"), ["--method", "unknown method 'lieganx'", "did you mean 'liegan'"]),
    "user_zero_epochs": (csv_run("--epochs", "0"), ["--epochs", "positive integer"]),
    "user_set_syntax": (csv_run("--set", "lambda_identity"), ["--set", "expected key=value"]),
    "user_set_negative": (csv_run("--set", "lambda_identity=-1"), ["--set", "at 'method.lambda_identity'"]),
    "user_set_unknown_key": (csv_run("--set", "lamda_identity=1"), ["lamda_identity", "did you mean 'lambda_identity'"]),
    "user_nothing_transforms": (csv_run("--x-rep", "scalar"), ["nothing transforms"]),
    "user_object_array": (npz_run({"x": np.array([[1, "a"]], dtype=object), "y": Y1[:1]}), ["array 'x'", "pickled"]),
    "user_rows_mismatch": (npz_run({"x": X2, "y": Y1[:7]}), ["x has 10 rows but y has 7"]),
    "user_missing_array": (npz_run({"inputs": X2, "y": Y1}), ["no array 'x'", "--x-key", "['inputs', 'y']"]),
    "user_npz_not_zip": (text_file("fake.npz", "x,y\n1,2\n"), ["fake.npz", "not an .npz"]),
    "user_npz_nan": (npz_run({"x": np.where(np.arange(10)[:, None] == 6, np.nan, X2), "y": Y1}), ["array 'x'", "row 6"]),
    "user_trajectories_shape": (npz_run({"train": X8}, "--pairs-from-trajectories", "train"), ["[orbits, steps >= 2, d]", "[10, 8]"]),
    "user_bad_permutation": (
        npz_run({"train": X8.reshape(2, 5, 8)}, "--pairs-from-trajectories", "train", "--permute", "0,1,2"),
        ["--permute 0,1,2", "permutation of 0..7"],
    ),
    "user_label_not_integer": (npz_run({"x": X2, "y": Y1}, "--y-rep", "label"), ["--y-rep label", "integers"]),
    "user_method_cannot_run": (npz_run({"x": X2, "y": X2}, "--x-rep", "scalar", "--y-rep", "vector"), ["--method liegan cannot run"]),
    "spec_unknown_key": (spec_run("x: {rep: vector}\nserach_space: {channels: 1}\n"), ["spec.yaml", "did you mean 'search_space'"]),
    "spec_x_label": (spec_run("x: {rep: label}\n"), ["spec.yaml", "at 'x.rep'"]),
    "spec_n_mismatch": (spec_run("search_space: {n: 3}\n"), ["search_space.n = 3", "vector dimension 2"]),
    "spec_is_list": (spec_run("- a\n"), ["spec.yaml", "expected a mapping"]),
    "spec_mask_ragged": (spec_run("search_space: {mask: [[1, 1], [1]]}\n"), ["search_space.mask", "2x2"]),
    "user_out_is_a_file": (
        lambda t: ["discover", "--data", str(rotation_csv(t)), "--out", str(rotation_csv(t)), "--x-cols", "x1,x2",
                   "--y-cols", "y"],
        ["--out", "not a folder"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_clear_message(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build, fragments = CASES[case]
    argv = build(tmp_path)
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("liegan: error: ") and len(lines) == 1, err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} missing from: {err}"


def test_bad_choice_is_an_argparse_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(user(tmp_path, rotation_csv(tmp_path), "--x-rep", "matrix"))
    err = capsys.readouterr().err
    assert info.value.code == 2 and "argument --x-rep: invalid choice: 'matrix'" in err and "Traceback" not in err


@pytest.mark.parametrize("case", ["profile_unknown_key", "user_missing_column", "dataset_corrupted"])
def test_installed_command_reports_without_traceback(case: str, tmp_path: Path) -> None:
    build, fragments = CASES[case]
    exe = Path(sys.executable).with_name("liegan")
    proc = subprocess.run([str(exe), *build(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert all(f in proc.stderr for f in fragments), proc.stderr


def test_matrix_is_large_enough() -> None:
    assert len(CASES) >= 25
