"""Plugins on the command line: `cdyn --plugin PATH` (repeatable) and the entry-point group `cdyn.plugins`.

The root callback loads them before any subcommand runs, so `derive`, `simulate`, `train`
and `verify` all see the user's terms and claims. Entry points load first (sorted by name),
then the `--plugin` files in the order given. A plugin that fails to load is one line,
`error: plugin PATH: <reason>`, and exit status 2 (`claims.PluginError` is a ValueError,
which `cli.main` prints). Configs and counterexample JSON files only *name* terms and
claims; nothing here reads a path to load from them.
"""

from __future__ import annotations

import importlib.metadata
import shlex
from pathlib import Path
from typing import Any

ENTRY_POINT_GROUP = "cdyn.plugins"


def load_cli_plugins(paths: list[Path]) -> None:
    """Load the installed entry points and the `--plugin` files; raise `claims.PluginError` on failure."""
    # `claims` imports NumPy, SciPy and Hypothesis: only pay for it when there is a plugin to load.
    if not paths and not importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        return
    from cdyn import claims

    claims.load_entry_points()
    for path in paths:
        claims.load_plugin(path)


def _shell_word(text: str) -> str:
    """A path as one shell word on one line (control characters shown escaped, never raw)."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        return repr(text)
    return shlex.quote(text)


def rerun_hint(claim_id: str, origin: Any, replay_file: Path) -> str:
    """The one-line message for replaying a plugin claim whose plugin is not loaded.

    The origin comes from a JSON file, so it is only printed (as quoted text), never loaded.
    """
    cid = repr(str(claim_id))
    where = _shell_word(str(replay_file))
    if isinstance(origin, dict) and origin.get("kind") == "file" and isinstance(origin.get("path"), str):
        path = _shell_word(origin["path"])
        return (f"claim {cid} comes from plugin {path}; "
                f"rerun as: cdyn --plugin {path} verify --replay {where}")
    if isinstance(origin, dict) and origin.get("kind") == "entry_point":
        name = _shell_word(str(origin.get("name")))
        dist = origin.get("distribution")
        dist_text = f"distribution {_shell_word(str(dist))}" if dist else "its distribution"
        return (f"claim {cid} comes from the entry point {name} of group {ENTRY_POINT_GROUP} ({dist_text}), "
                f"which is not installed here; install it and rerun: cdyn verify --replay {where}")
    return f"claim {cid} comes from an unrecognised plugin record; load the plugin that defines it with --plugin"
