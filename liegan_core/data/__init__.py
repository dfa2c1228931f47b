"""Dataset generators, one module per family, registered by name."""
from __future__ import annotations

from typing import Any, Callable

from ..errors import UserError
from .dataset import Dataset, load

GeneratorFn = Callable[[dict[str, Any], int], Dataset]
GENERATORS: dict[str, GeneratorFn] = {}


def register_generator(name: str) -> Callable[[GeneratorFn], GeneratorFn]:
    """Register `fn(params, seed) -> Dataset` under `name` (the `data.generator` key of a benchmark)."""

    def deco(fn: GeneratorFn) -> GeneratorFn:
        GENERATORS[name] = fn
        return fn

    return deco


def _load_builtin() -> None:
    from . import nbody  # noqa: F401

    for optional in ("synthetic", "jets", "digits"):
        try:
            __import__(f"{__name__}.{optional}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{optional}":
                raise


def get_generator(name: str) -> GeneratorFn:
    _load_builtin()
    if name not in GENERATORS:
        from difflib import get_close_matches

        close = get_close_matches(name, GENERATORS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UserError(f"unknown data generator '{name}'{hint}; registered: {sorted(GENERATORS)}")
    return GENERATORS[name]


CHUNKED_MODULES = {"top_tagging": "jets"}


def chunked_module(name: str) -> Any | None:
    """The module generating `name` in independent chunks (one pipeline job each), if it does.

    Such a module provides generate_chunk(params, seed, chunk, progress), save_chunk(arrays, path)
    and build_dataset(chunk_paths, params, seed).
    """
    mod = CHUNKED_MODULES.get(name)
    return __import__(f"{__name__}.{mod}", fromlist=["generate_chunk"]) if mod else None


def generate(name: str, params: dict[str, Any], seed: int) -> Dataset:
    return get_generator(name)(params, seed)


__all__ = ["Dataset", "load", "register_generator", "get_generator", "generate", "chunked_module", "GENERATORS"]
