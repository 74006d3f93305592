"""The claim registry. A module of `claims/` registers its claims at import; nothing else to edit.

`load_all()` imports every public module of the package (`c5_positive_only`, …, and any
later one such as `c10_c11`), so adding a claim is adding a file that calls `register`.
Claims registered while a user plugin loads (`claims.load_plugin`) remember where they
came from (`claim_origin`), so a saved counterexample can say which plugin to load.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Any

from ._claim import Claim

_CLAIMS: dict[str, Claim] = {}
_LOADED = False
#: claim id -> origin of the plugin that registered it (JSON-able; built-in claims have none).
_ORIGINS: dict[str, dict[str, Any]] = {}
#: The origin of the plugin being loaded right now (set by `claims._plugins`), else None.
_CURRENT_ORIGIN: dict[str, Any] | None = None


def register(*claims: Claim) -> None:
    """Add claims (an id may be registered once; re-importing a module re-registers the same object)."""
    for c in claims:
        if not isinstance(c, Claim):
            raise TypeError(f"register: expected Claim, got {type(c).__name__}")
        old = _CLAIMS.get(c.id)
        if old is not None and (old.title, old.statement) != (c.title, c.statement):
            raise ValueError(f"claims: id {c.id!r} is already registered by another claim")
        _CLAIMS[c.id] = c
        if _CURRENT_ORIGIN is not None and c.id not in _ORIGINS:
            _ORIGINS[c.id] = dict(_CURRENT_ORIGIN)


def claim_origin(claim_id: str) -> dict[str, Any] | None:
    """Where a claim came from: a plugin origin dict (`kind` "file" or "entry_point"), or None if built in."""
    origin = _ORIGINS.get(claim_id)
    return dict(origin) if origin is not None else None


def is_registered(claim_id: str) -> bool:
    """True when a claim with this id is registered (after loading the built-in claims)."""
    load_all()
    return claim_id in _CLAIMS


def _forget(claim_ids: list[str]) -> None:
    """Remove claims again (used to undo a plugin that failed half-way through loading)."""
    for i in claim_ids:
        _CLAIMS.pop(i, None)
        _ORIGINS.pop(i, None)


def _key(claim_id: str) -> tuple:
    """Natural order: C5 < C5-false < C6 < … < C10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", claim_id))


def load_all() -> None:
    """Import every public module of this package once (each registers its claims)."""
    global _LOADED
    if _LOADED:
        return
    from cdyn import claims as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"cdyn.claims.{info.name}")
    _LOADED = True


def all_claims() -> list[Claim]:
    load_all()
    return sorted(_CLAIMS.values(), key=lambda c: _key(c.id))


def get_claim(claim_id: str) -> Claim:
    load_all()
    if claim_id not in _CLAIMS:
        known = ", ".join(c.id for c in all_claims())
        raise ValueError(f"claims: unknown claim id {claim_id!r}; known: {known}")
    return _CLAIMS[claim_id]


def select(ids: str | None) -> list[Claim]:
    """Claims named in a comma-separated list (all when None or empty), in registry order."""
    if ids is None or not ids.strip():
        return all_claims()
    wanted = [s.strip() for s in ids.split(",") if s.strip()]
    chosen = {get_claim(i).id for i in wanted}
    return [c for c in all_claims() if c.id in chosen]
