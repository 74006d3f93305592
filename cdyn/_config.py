"""TOML configs for the CLI: a typed schema, strict keys, and errors that name the field.

Configs only *name* registered loss terms; no string from a config is ever evaluated.
"""

from __future__ import annotations

import math
import stat
import tomllib
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A config problem; the message names the section and key."""


_NUMBER = (int, float)
#: section -> key -> (accepted types, default). Other commands add their own sections.
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
    "problem": {
        "seed": ((int,), 0),
        "d_A": ((int,), 8),
        "d_B": ((int,), 8),
        "m": ((int,), 4),
        "spectrum_A": ((list,), [2.0, 1.2, 0.7, 0.4]),
        "spectrum_B": ((list,), [1.8, 1.1, 0.75, 0.45]),
        "noise_A": (_NUMBER, 0.1),
        "noise_B": (_NUMBER, 0.1),
        "lam": (_NUMBER, 1.0),
        "mu": (_NUMBER, 0.0),
        "shared_right": ((bool,), False),
        # Values of the symbolic weights of user terms (e.g. nu of a plugin term): { nu = 0.5 }.
        "params": ((dict,), {}),
    },
    "init": {"scale": (_NUMBER, 1e-3), "seed": ((int,), 0)},
    "run": {
        "t_end": (_NUMBER, 200.0),
        "eta": (_NUMBER, 0.01),
        "terms": ((list,), ["pos", "neg"]),
        "method": ((str,), "auto"),
        # The flow's integrator: SciPy (the reference) or the numba-compiled DOP853 (`integrate(backend=)`).
        "backend": ((str,), "scipy"),
        "n_points": ((int,), 401),
        "grad_tol": (_NUMBER, 1e-6),
    },
    # `cdyn train` (mini-batch SGD). steps = 0 means round(t_end/eta); n_data = 0 means online;
    # t_end = 0 means: as long as the flow of the same terms takes to reach its certified
    # equilibrium (at most [run].t_end), so the default run ends at the limit it draws.
    "train": {
        "loss": ((str,), "spectral"),
        "batch": ((int,), 256),
        "eta": (_NUMBER, 0.02),
        "t_end": (_NUMBER, 0.0),
        "steps": ((int,), 0),
        "n_data": ((int,), 0),
        "temperature": (_NUMBER, 1.0),
        "learn_tau": ((bool,), False),
        "normalize": ((bool,), False),
        "weight_decay": (_NUMBER, 0.0),
        "z_dist": ((str,), "gaussian"),
        "seed": ((int,), 0),
        "repeats": ((int,), 1),
        "n_points": ((int,), 301),
    },
}

#: Keys whose value is one of a fixed set of names (checked here, so a typo is one line naming the key).
#: `[run].backend` mirrors `numerics.BACKENDS` (kept literal: this module imports no numerics; a test
#: checks that the two agree).
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {("run", "backend"): ("scipy", "numba")}


def check_choice(field: str, value: object, choices: tuple[str, ...]) -> str:
    """`value` if it is one of `choices`, else a ValueError naming `field` (one line, no echo of a long value)."""
    if isinstance(value, str) and value in choices:
        return value
    shown = repr(value) if isinstance(value, str) and len(value) <= 40 else type(value).__name__
    raise ValueError(f"{field}: unknown value {shown}; choose from {', '.join(choices)}")


def _type_name(types: tuple[type, ...]) -> str:
    return {"int": "an integer", "float": "a number", "list": "a list", "str": "a string", "bool": "true/false",
            "dict": "a table"}[
        types[-1].__name__ if types != _NUMBER else "float"]


def defaults() -> dict[str, dict[str, Any]]:
    return {sec: {k: (type(v[1])(v[1]) if isinstance(v[1], (list, dict)) else v[1]) for k, v in keys.items()}
            for sec, keys in SCHEMA.items()}


#: Names a `[problem] params` entry may not take: they are fields of the problem or data symbols.
_RESERVED = ("lam", "mu", "A", "B", "A_xi", "B_xi", "Sigma_z", "Sigma_A", "Sigma_B", "C", "W_A", "W_B")


def _params(sec: str, key: str, table: dict[str, Any]) -> dict[str, float]:
    """Validate a table of symbolic weights: identifier names, finite numbers (no expressions)."""
    out = {}
    for name, value in table.items():
        if not name.isidentifier():
            raise ConfigError(f"config: [{sec}].{key}: {name!r} is not a valid symbol name (an identifier)")
        if name in _RESERVED:
            raise ConfigError(f"config: [{sec}].{key}.{name}: reserved name; set it as [{sec}].{name}"
                              if name in SCHEMA[sec] else f"config: [{sec}].{key}.{name}: reserved name (a data symbol)")
        if isinstance(value, bool) or not isinstance(value, _NUMBER) or not math.isfinite(value):
            raise ConfigError(f"config: [{sec}].{key}.{name} must be a finite number, got {value!r}")
        out[name] = float(value)
    return out


def validate(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Merge a parsed TOML document over the defaults, rejecting unknown keys and wrong types."""
    cfg = defaults()
    for sec, body in raw.items():
        if sec not in SCHEMA:
            raise ConfigError(f"config: unknown section [{sec}] (known: {', '.join(SCHEMA)})")
        if not isinstance(body, dict):
            raise ConfigError(f"config: [{sec}] must be a table")
        for key, value in body.items():
            if key not in SCHEMA[sec]:
                raise ConfigError(f"config: unknown key [{sec}].{key} (known: {', '.join(SCHEMA[sec])})")
            types = SCHEMA[sec][key][0]
            ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
            if not ok:
                raise ConfigError(f"config: [{sec}].{key} must be {_type_name(types)}, got {value!r}")
            if isinstance(value, dict):
                value = _params(sec, key, value)
            if isinstance(value, list):
                inner = str if key == "terms" else _NUMBER
                if not all(isinstance(v, inner) and not isinstance(v, bool) for v in value):
                    what = "strings" if inner is str else "numbers"
                    raise ConfigError(f"config: [{sec}].{key} must be a list of {what}")
                if key == "terms" and not value:
                    raise ConfigError(f"config: [{sec}].terms must name at least one loss term")
            if (sec, key) in CHOICES:
                try:
                    check_choice(f"[{sec}].{key}", value, CHOICES[sec, key])
                except ValueError as err:
                    raise ConfigError(f"config: {err}") from None
            cfg[sec][key] = float(value) if types == _NUMBER else value
    return cfg


def load_config(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """Read and validate a TOML file (or return the defaults when `path` is None)."""
    if path is None:
        return defaults()
    p = Path(path)
    text = _read_config(p)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config: malformed TOML in {p.name}: {err}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigError(f"config: {p.name} nests arrays or tables too deeply to parse") from None
    return validate(raw)


#: A config is a few hundred bytes; anything this large is not one (and is not read whole).
MAX_CONFIG_BYTES = 1 << 20
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _read_config(p: Path) -> str:
    """The text of a regular file, or a ConfigError saying what the path is instead (never blocks on a FIFO)."""
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ConfigError(f"config: no such file {str(p)!r}") from None
    except OSError as err:
        raise ConfigError(f"config: cannot access {str(p)!r}: {err.strerror or err}") from None
    for test, kind in _KINDS:
        if test(st.st_mode):
            raise ConfigError(f"config: {str(p)!r} is {kind}, not a TOML file")
    if st.st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"config: {str(p)!r} is {st.st_size} bytes, too large for a config (limit {MAX_CONFIG_BYTES})")
    try:
        with open(p, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"config: cannot read {str(p)!r}: {err.strerror or err}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config: {str(p)!r} is larger than {MAX_CONFIG_BYTES} bytes, too large for a config")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config: {p.name} is not UTF-8 text") from None
