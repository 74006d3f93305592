"""Swept fields and their values: `section.key` paths checked against the config schema, grids,
and the seeded random / Latin-hypercube samples (`scipy.stats.qmc`) of `[sweep.ranges]`."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._config import SCHEMA, ConfigError, defaults, validate

SECTIONS = ("problem", "init", "run", "train")
#: Names the store uses for its own dimensions and variables: a field may not take them.
RESERVED = ("seed", "sample", "cell", "t_status", "t_peak", "kappa_peak", "t_peak_pred", "kappa_final",
            "kappa_limit", "eig_ratio", "rate1", "rate1_pred", "rate2", "rate2_pred", "train_gap", "wall",
            "status", "reason", "done", "run")
MAX_CELLS = 10**6


def _err(where: str, msg: str) -> ConfigError:
    return ConfigError(f"config: [sweep] {where}: {msg}")


@dataclass(frozen=True)
class Field:
    """One swept field: `path` as written (`problem.spectrum_A[3]`), its dimension `name` and `kind`."""

    path: str
    section: str
    key: str
    index: int | None = None
    param: str | None = None
    name: str = ""
    kind: str = "float"

    def set(self, raw: dict[str, Any], value: Any) -> None:
        """Put `value` into a raw (unvalidated) config dict."""
        sec = raw.setdefault(self.section, {})
        if self.param is not None:
            sec["params"] = dict(sec.get("params", {})) | {self.param: value}
        elif self.index is not None:
            lst = list(sec.get(self.key, defaults()[self.section][self.key]))
            lst[self.index] = value
            sec[self.key] = lst
        else:
            sec[self.key] = value


def parse_field(path: Any, base: dict[str, Any]) -> Field:
    """`section.key`, `section.key[i]` or `problem.params.NAME`, checked against the config schema."""
    if not isinstance(path, str) or "." not in path:
        raise _err(repr(path), "a field is written section.key, e.g. problem.lam")
    section, _, rest = path.partition(".")
    if section not in SECTIONS:
        raise _err(path, f"unknown section [{section}] (a sweep varies {', '.join(SECTIONS)})")
    if section == "problem" and rest.startswith("params."):
        name = rest[len("params."):]
        if not name.isidentifier():
            raise _err(path, f"{name!r} is not a valid symbol name")
        return Field(path, section, "params", param=name, name=name, kind="float")
    key, index = rest, None
    if rest.endswith("]") and "[" in rest:
        key, _, idx = rest[:-1].partition("[")
        try:
            index = int(idx)
        except ValueError:
            raise _err(path, f"index {idx!r} is not an integer") from None
    if key not in SCHEMA[section] or key == "params":
        raise _err(path, f"unknown field (known in [{section}]: {', '.join(k for k in SCHEMA[section] if k != 'params')})")
    types = SCHEMA[section][key][0]
    if index is not None:
        if list not in types or key == "terms":
            raise _err(path, f"[{section}].{key} is not a list of numbers; only those take an index")
        n = len(base.get(section, {}).get(key, defaults()[section][key]))
        if not -n <= index < n:
            raise _err(path, f"index {index} is out of range for [{section}].{key} of length {n}")
        index %= n
        return Field(path, section, key, index=index, name=f"{key}_{index}", kind="float")
    kind = {int: "int", bool: "bool", str: "str", list: "list"}.get(types[-1], "float")
    return Field(path, section, key, name=key, kind=kind)


def _flatten(table: dict[str, Any], where: str, leaf: Any) -> dict[str, Any]:
    """`{"problem": {"lam": v}}` (TOML dotted keys) and `{"problem.lam": v}` both to `{"problem.lam": v}`."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        if isinstance(v, dict) and not leaf(v):
            for k2, v2 in _flatten(v, f"{where}.{k}", leaf).items():
                out[f"{k}.{k2}"] = v2
        else:
            out[k] = v
    return out


def _is_range(v: dict[str, Any]) -> bool:
    return "low" in v or "high" in v

def _grid(table: Any, base: dict[str, Any]) -> tuple[tuple[Field, ...], tuple[tuple[Any, ...], ...]]:
    if not isinstance(table, dict) or not table:
        raise _err("grid", "design = 'grid' needs a [sweep.grid] table of field = [values]")
    fields, values = [], []
    for path, vals in _flatten(table, "grid", lambda v: False).items():
        f = parse_field(path, base)
        if not isinstance(vals, list) or not vals:
            raise _err(f"grid.{path}", f"must be a non-empty list of values, got {vals!r}")
        if f.kind == "float":  # as the config validator stores numbers: 1 and 1.0 are one value
            vals = [float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in vals]
        if len({json.dumps(v) for v in vals}) != len(vals):
            raise _err(f"grid.{path}", f"repeated values in {vals}")
        for v in vals:  # each value through the config validator, alone: types named as in any config
            raw = copy.deepcopy(base)
            f.set(raw, v)
            try:
                validate(raw)
            except ConfigError as err:
                raise _err(f"grid.{path}", str(err).removeprefix("config: ")) from None
        fields.append(f)
        values.append(tuple(vals))
    return tuple(fields), tuple(values)


def _ranges(table: Any, base: dict[str, Any], design: str, n: Any, seed: Any) -> tuple[tuple[Field, ...], tuple[tuple[Any, ...], ...]]:
    if not isinstance(table, dict) or not table:
        raise _err("ranges", f"design = '{design}' needs a [sweep.ranges] table of field = [low, high]")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CELLS:
        raise _err("samples", f"design = '{design}' needs samples = an integer in 1..{MAX_CELLS}, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise _err("seed", f"the design's seed must be an integer >= 0, got {seed!r}")
    fields, bounds = [], []
    for path, rng in _flatten(table, "ranges", _is_range).items():
        f = parse_field(path, base)
        where = f"ranges.{path}"
        if f.kind not in ("float", "int"):
            raise _err(where, f"a {design} design samples numbers; [{f.section}].{f.key} is {f.kind}")
        if isinstance(rng, list):
            rng = {"low": rng[0], "high": rng[1]} if len(rng) == 2 else {"bad": rng}
        if not isinstance(rng, dict) or set(rng) - {"low", "high", "log"} or not {"low", "high"} <= set(rng):
            raise _err(where, f"must be [low, high] or {{ low = .., high = .., log = true }}, got {rng!r}")
        lo, hi, log = rng["low"], rng["high"], rng.get("log", False)
        for name, v in (("low", lo), ("high", hi)):
            ok = isinstance(v, int) if f.kind == "int" else isinstance(v, (int, float))
            if isinstance(v, bool) or not ok or not math.isfinite(v):
                raise _err(f"{where}.{name}", f"must be a finite {'integer' if f.kind == 'int' else 'number'}, got {v!r}")
        if not isinstance(log, bool):
            raise _err(f"{where}.log", f"must be true/false, got {log!r}")
        if not lo < hi:
            raise _err(where, f"needs low < high, got {lo} and {hi}")
        if log and lo <= 0:
            raise _err(where, f"a log range needs low > 0, got {lo}")
        fields.append(f)
        bounds.append((float(lo), float(hi), log, f.kind == "int"))
    if design == "lhs":
        from scipy.stats import qmc

        u = qmc.LatinHypercube(d=len(fields), seed=np.random.default_rng(seed)).random(n)
    else:
        u = np.random.default_rng(seed).random((n, len(fields)))
    cols = []
    for j, (lo, hi, log, is_int) in enumerate(bounds):
        if is_int:  # uniform over the integers lo..hi (in log: over [lo, hi + 1) in log space)
            x = np.exp(np.log(lo) + u[:, j] * (np.log(hi + 1) - np.log(lo))) if log else lo + u[:, j] * (hi + 1 - lo)
            cols.append([int(min(math.floor(v), hi)) for v in x])
        else:
            x = np.exp(np.log(lo) + u[:, j] * (np.log(hi) - np.log(lo))) if log else lo + u[:, j] * (hi - lo)
            cols.append([float(v) for v in x])
    return tuple(fields), tuple(tuple(c[i] for c in cols) for i in range(n))


def _names(fields: tuple[Field, ...]) -> tuple[Field, ...]:
    """Dimension names: the key, or `section_key` where keys clash or a name is the store's own."""
    keys = [f.name for f in fields]
    out = []
    for f in fields:
        name = f.name if keys.count(f.name) == 1 and f.name not in RESERVED else f"{f.section}_{f.name}"
        out.append(Field(f.path, f.section, f.key, f.index, f.param, name, f.kind))
    if len({f.name for f in out}) != len(out) or len({f.path for f in out}) != len(out):
        dup = next(f.path for f in out if [g.path for g in out].count(f.path) > 1 or [g.name for g in out].count(f.name) > 1)
        raise _err(dup, "the same field is swept twice")
    return tuple(out)
