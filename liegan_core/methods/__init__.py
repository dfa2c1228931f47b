"""Registry of discovery methods.

Three ways in: the built-in modules; installed packages declaring an entry point in the group
`liegan_core.methods` (name = method name, value = the class); and modules named in the
environment variable LIEGAN_PLUGINS (comma-separated, importable from PYTHONPATH) that use
`@register`.
"""
from __future__ import annotations

import os
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, Callable

from ..errors import UserError
from .base import Budget, Discovery, Method, RunContext, SearchSpace

METHODS: dict[str, type] = {}
BUILTIN = ("liegan", "symmetrygan", "augerino", "liegg", "oracle")
ENTRY_POINT_GROUP = "liegan_core.methods"
PLUGIN_ENV = "LIEGAN_PLUGINS"


def register(name: str) -> Callable[[type], type]:
    """Class decorator: make a method available under `name` in benchmark YAMLs."""

    def deco(cls: type) -> type:
        cls.name = name
        METHODS[name] = cls
        return cls

    return deco


def _load_all() -> None:
    for mod in BUILTIN:
        try:
            import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{mod}":
                raise
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in METHODS:
            obj = ep.load()
            if isinstance(obj, type) and ep.name not in METHODS:
                register(ep.name)(obj)
    for mod in filter(None, (m.strip() for m in os.environ.get(PLUGIN_ENV, "").split(","))):
        try:
            import_module(mod)
        except ImportError as e:
            raise UserError(f"{PLUGIN_ENV}: cannot import method module '{mod}' ({e})") from e


def available() -> list[str]:
    _load_all()
    return sorted(METHODS)


def get_method(name: str) -> Any:
    """An instance of the method registered as `name`."""
    _load_all()
    if name not in METHODS:
        from difflib import get_close_matches

        close = get_close_matches(name, METHODS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UserError(f"unknown method '{name}'{hint}; registered: {sorted(METHODS)}")
    return METHODS[name]()


def unknown_params(name: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, hint) for each hyperparameter the method `name` does not know.

    Known keys are the method module's DEFAULTS plus the budget keys `epochs` and `batch_size`;
    a method without a DEFAULTS dict accepts anything. Typos would otherwise change nothing.
    """
    import sys
    from difflib import get_close_matches

    method = get_method(name)
    defaults = getattr(sys.modules[type(method).__module__], "DEFAULTS", None)
    if not isinstance(defaults, dict):
        return []
    known = sorted({*defaults, "epochs", "batch_size"})
    out = []
    for key in params:
        if key not in known:
            close = get_close_matches(key, known, n=1)
            out.append((key, (f" (did you mean '{close[0]}'?)" if close else "") + f"; known: {known}"))
    return out


__all__ = ["register", "get_method", "available", "Budget", "Discovery", "Method", "RunContext", "SearchSpace", "METHODS",
           "unknown_params"]
