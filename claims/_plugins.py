r"""User plugins: Python modules that register loss terms and claims, with a record of where each came from.

A plugin is a `.py` file (`load_plugin(path)`, `cdyn --plugin PATH`) or an entry point of the
group `cdyn.plugins` (`load_entry_points()`). Importing it runs its module body, which calls
`theory.register_term(...)` and `claims.register(...)`. While it loads, every claim it
registers and every term it adds is tagged with its **origin**:

* `{"kind": "file", "path": "/abs/plugin.py", "sha256": "…"}`, or
* `{"kind": "entry_point", "name": …, "value": "module:attr", "distribution": …, "version": …}`.

The origin goes into each counterexample JSON (`"plugin"`), so `cdyn verify --replay` can say
which plugin to load. It never loads one itself: a JSON file must not choose code to run.
A plugin that fails to load is undone (its claims and terms removed) and raises `PluginError`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import sys
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from cdyn import theory

from . import _registry

#: The entry-point group scanned by `load_entry_points()` (and by the `cdyn` command line).
ENTRY_POINT_GROUP = "cdyn.plugins"

#: origin key ("file:/abs/p.py" or "entry_point:name") -> origin, in load order.
_LOADED: dict[str, dict[str, Any]] = {}
#: term name -> origin of the plugin that added it.
_TERM_ORIGINS: dict[str, dict[str, Any]] = {}


class PluginError(ValueError):
    """A plugin could not be loaded; the message starts with `plugin <where>:` and is one line."""


def _one_line(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return " ".join(text.split())


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (what a counterexample records about the plugin that made it)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@contextmanager
def _recording(origin: dict[str, Any], where: str) -> Iterator[None]:
    """Tag claims and terms registered inside the block with `origin`; undo them all if it raises."""
    if _registry._CURRENT_ORIGIN is not None:
        raise PluginError(f"plugin {where}: plugins cannot load other plugins")
    # Built-in claims first, so a plugin id that clashes with one fails here, not later.
    _registry.load_all()
    claims_before = set(_registry._CLAIMS)
    terms_before = set(theory.available_terms())
    _registry._CURRENT_ORIGIN = origin
    try:
        yield
    except BaseException as err:
        _registry._forget([i for i in _registry._CLAIMS if i not in claims_before])
        for name in set(theory.available_terms()) - terms_before:
            theory.unregister_term(name)
        if isinstance(err, (PluginError, KeyboardInterrupt)):
            raise
        raise PluginError(f"plugin {where}: {_one_line(err)}") from err
    finally:
        _registry._CURRENT_ORIGIN = None
    for name in theory.available_terms():
        if name not in terms_before:
            _TERM_ORIGINS[name] = dict(origin)


def load_plugin(path: str | Path) -> types.ModuleType | None:
    """Import a plugin file once; record its origin for the claims and terms it registers.

    Returns the module (None if this file was already loaded). Raises `PluginError`
    (`plugin PATH: reason`) when the file is missing, not `.py`, or fails to import.
    """
    p = Path(path).expanduser()
    where = str(path)
    if p.suffix != ".py":
        raise PluginError(f"plugin {where}: not a .py file")
    if not p.is_file():
        raise PluginError(f"plugin {where}: no such file")
    p = p.resolve()
    key = f"file:{p}"
    if key in _LOADED:
        return None
    try:
        digest = file_sha256(p)
    except OSError as err:
        raise PluginError(f"plugin {where}: {_one_line(err)}") from None
    origin = {"kind": "file", "path": str(p), "sha256": digest}
    # A unique, importable name: dataclasses and pickling look the module up in sys.modules.
    name = f"cdyn_plugin_{digest[:12]}_{''.join(ch if ch.isalnum() else '_' for ch in p.stem)}"
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin {where}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with _recording(origin, where):
            spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    _LOADED[key] = origin
    return module


def _entry_point_origin(ep: importlib.metadata.EntryPoint) -> dict[str, Any]:
    dist = getattr(ep, "dist", None)
    return {"kind": "entry_point", "group": ENTRY_POINT_GROUP, "name": ep.name, "value": ep.value,
            "distribution": dist.metadata["Name"] if dist is not None else None,
            "version": dist.version if dist is not None else None}


def load_entry_point(ep: importlib.metadata.EntryPoint) -> None:
    """Load one entry point: a module (its import registers) or a callable (called with no arguments)."""
    origin = _entry_point_origin(ep)
    key = f"entry_point:{ep.name}={ep.value}"
    if key in _LOADED:
        return
    with _recording(origin, f"{ep.name} ({ep.value})"):
        obj = ep.load()
        if callable(obj) and not isinstance(obj, types.ModuleType):
            obj()
    _LOADED[key] = origin


def load_entry_points() -> list[dict[str, Any]]:
    """Load every entry point of the group `cdyn.plugins` (sorted by name); returns their origins."""
    eps = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value))
    for ep in eps:
        load_entry_point(ep)
    return [_entry_point_origin(ep) for ep in eps]


def loaded_plugins() -> list[dict[str, Any]]:
    """Origins of the plugins loaded so far, in load order."""
    return [dict(o) for o in _LOADED.values()]


def term_origin(name: str) -> dict[str, Any] | None:
    """The origin of the plugin that added loss term `name`, or None (built in, or added directly)."""
    origin = _TERM_ORIGINS.get(name)
    return dict(origin) if origin is not None else None


def describe_origin(origin: dict[str, Any]) -> str:
    """One line naming a plugin origin (for messages; the values are printed, never run)."""
    if origin.get("kind") == "file":
        return f"plugin {origin.get('path')}"
    if origin.get("kind") == "entry_point":
        dist = origin.get("distribution")
        return f"entry point {origin.get('name')!r} ({origin.get('value')}) of {dist or 'an unknown distribution'}"
    return "an unknown plugin"
