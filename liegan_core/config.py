"""Benchmark and profile configuration: loading, merging, validation with errors that name the key.

A benchmark YAML describes one task; a profile YAML (also the Snakemake config) picks tasks,
seeds and sizes, overriding parts of each task's YAML. Both are validated against JSON schemas
(draft 2020-12) shipped in `liegan_core/schemas`, then checked semantically (registered names,
mask shapes), before any job starts.
"""
from __future__ import annotations

import copy
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError

SCHEMA_DIR = Path(__file__).parent / "schemas"


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; values in `override` win, lists are replaced whole."""
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        # one line: PyYAML's own message spans several lines with a caret drawing
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"{path}: not valid YAML{where}: {problem}") from e
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _schema(name: str) -> dict[str, Any]:
    return yaml.safe_load((SCHEMA_DIR / f"{name}.schema.yaml").read_text())


def _key_path(error: Any) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "(top level)"


def validate_schema(data: dict[str, Any], schema_name: str, source: str) -> dict[str, Any]:
    """Validate against a schema and fill its defaults; UserError names the file and key path."""
    import jsonschema

    schema = _schema(schema_name)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        msg = e.message
        if e.validator == "additionalProperties":
            allowed = sorted(e.schema.get("properties", {}))
            extra = [k for k in e.instance if k not in allowed]
            hints = []
            for k in extra:
                close = get_close_matches(k, allowed, n=1)
                hints.append(f"'{k}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
            msg = f"unknown key {', '.join(hints)}; allowed keys: {allowed}"
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise UserError(f"{source}: at '{_key_path(e)}': {msg}{more}")
    out = copy.deepcopy(data)
    for key, spec in schema.get("properties", {}).items():
        if key not in out and "default" in spec:
            out[key] = copy.deepcopy(spec["default"])
    return out


def load_profile(path: str | Path) -> dict[str, Any]:
    return validate_schema(read_yaml(path), "profile", str(path))


def profile_path(name_or_path: str | Path, benchmarks_dir: str | Path = "benchmarks") -> Path:
    """A profile given by name ('quick') or path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return Path(benchmarks_dir) / "profiles" / f"{name_or_path}.yaml"


def resolve_task(profile: dict[str, Any], task: str, source: str | None = None) -> dict[str, Any]:
    """The task's benchmark YAML with the profile's overrides merged in, validated."""
    bdir = Path(profile.get("benchmarks_dir", "benchmarks"))
    path = bdir / f"{task}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in bdir.glob("*.yaml"))
        close = get_close_matches(task, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UserError(f"{source or 'profile'}: at 'tasks': unknown task '{task}'{hint}; known tasks: {known}")
    raw = read_yaml(path)
    merged = deep_merge(raw, profile.get("overrides", {}).get(task, {}))
    src = f"{path}" + (f" (with overrides from {source})" if source and task in profile.get("overrides", {}) else "")
    cfg = validate_schema(merged, "benchmark", src)
    if cfg["task"] != task:
        raise UserError(f"{path}: at 'task': the file is named '{task}.yaml' but declares task '{cfg['task']}'")
    check_semantics(cfg, src)
    if profile.get("methods"):
        unknown = [m for m in profile["methods"] if m not in cfg["methods"]]
        if unknown:
            raise UserError(f"{source}: at 'methods': {unknown} not configured in {path} (it has {sorted(cfg['methods'])})")
        cfg["methods"] = {m: cfg["methods"][m] for m in profile["methods"]}
    return cfg


def check_semantics(cfg: dict[str, Any], source: str) -> None:
    """Checks a schema cannot express: registered names and shapes that depend on other keys."""
    from .data import get_generator
    from .methods import available, unknown_params

    try:
        get_generator(cfg["data"]["generator"])
    except UserError as e:
        raise UserError(f"{source}: at 'data.generator': {e}") from None
    names = available()
    for m in cfg["methods"]:
        if m not in names:
            close = get_close_matches(m, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UserError(f"{source}: at 'methods.{m}': unknown method '{m}'{hint}; registered: {names}")
        for key, hint in unknown_params(m, cfg["methods"][m] or {}):
            raise UserError(f"{source}: at 'methods.{m}.{key}': unknown hyperparameter of '{m}'{hint}")
    for key, problem in search_space_problems(cfg["search_space"], cfg["search_space"]["n"]):
        raise UserError(f"{source}: at 'search_space.{key}': {problem}")


def search_space_problems(space: dict[str, Any], n: int) -> list[tuple[str, str]]:
    """(key, what is wrong) for the search-space checks a schema cannot express (they relate keys)."""
    problems = []
    block = space.get("block")
    if block is not None and n % block:
        problems.append(("block", f"{block} must divide search_space.n = {n}"))
    mask = space.get("mask")
    if mask is not None:
        m = block or n
        if len(mask) != m or any(len(row) != m for row in mask):
            problems.append(("mask", f"expected a {m}x{m} matrix (the {'block' if block else 'generator'} size), "
                                     f"got {len(mask)} rows of lengths {[len(row) for row in mask]}"))
    coeff = space.get("coefficients") or {}
    if coeff.get("distribution") in ("uniform", "integer") and coeff.get("low", -1) >= coeff.get("high", 1):
        problems.append(("coefficients", "low must be below high"))
    return problems


def load_run_config(profile: str | Path, task: str) -> dict[str, Any]:
    """Profile + task, validated: what one `liegan` step needs."""
    path = profile_path(profile)
    prof = load_profile(path)
    return resolve_task(prof, task, str(path)) | {"_profile": prof}
