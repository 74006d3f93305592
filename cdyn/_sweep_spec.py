r"""The `[sweep]` section of a config: which fields vary, over which values, with which seeds.

```toml
[sweep]
design = "grid"          # grid (default) | random | lhs (Latin hypercube, scipy.stats.qmc)
seeds = 3                # repeats: n (seeds 0..n-1) or a list of distinct integers >= 0
seed_fields = ["problem.seed", "init.seed", "train.seed"]   # set to the repeat's seed in every cell
init = "random"          # random: the config's Gaussian init; balanced: decoupled aligned init, X0 = scale^2
train = "none"           # none | gd | sgd (the [train] loss: spectral, clip, pos-only)
batch = 0                # cells per Dask task (0: chosen from the number of cells and workers)
workers = 2              # size of the embedded cluster (0: serial); --workers overrides
scheduler = "tcp://10.0.0.5:8786"   # or an existing cluster; --scheduler overrides

[sweep.grid]             # design = "grid": one dimension per field, a list of values each
"problem.lam" = [0.5, 1.0, 2.0]
"problem.spectrum_A[3]" = [0.1, 0.4]   # one element of a list field
"problem.params.nu" = [0.2, 0.5]       # a plugin term's weight

[sweep.ranges]           # design = "random" | "lhs": numeric fields, [low, high] or a table
"init.scale" = { low = 1e-6, high = 1e-2, log = true }
```

Fields are `section.key` of `[problem]`, `[init]`, `[run]`, `[train]`. Each cell's config is the
base config with the cell's values set, validated by `cdyn._config.validate` (the same
validator as every other command), so a bad value names its field. A cell's seeds are the
values on its `seed` coordinate: the same in every run, whatever the order cells run in.
"""

from __future__ import annotations

import copy
import json
import math
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from ._config import SCHEMA, ConfigError, validate
from ._sweep_design import MAX_CELLS, SECTIONS, Field, _err, _grid, _names, _ranges

DESIGNS = ("grid", "random", "lhs")
INITS = ("random", "balanced")
TRAINS = ("none", "gd", "sgd")
KEYS = ("design", "seeds", "seed_fields", "init", "train", "batch", "samples", "seed", "grid", "ranges", "workers",
        "scheduler")
#: Where a sweep runs, not what it computes: a store made elsewhere may be resumed with other values.
ENGINE_KEYS = ("workers", "scheduler", "batch")


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, validated sweep: the base config, the fields, the design and the seeds."""

    text: str
    base: dict[str, Any]
    design: str
    fields: tuple[Field, ...]
    seeds: tuple[int, ...]
    seed_fields: tuple[str, ...]
    init: str = "random"
    train: str = "none"
    batch: int = 0
    workers: int | None = None
    scheduler: str | None = None
    #: grid: the values of each field; random/lhs: one tuple of values per sample.
    values: tuple[tuple[Any, ...], ...] = field(default=())

    @property
    def dims(self) -> tuple[str, ...]:
        return (tuple(f.name for f in self.fields) if self.design == "grid" else ("sample",)) + ("seed",)

    @property
    def shape(self) -> tuple[int, ...]:
        lead = tuple(len(v) for v in self.values) if self.design == "grid" else (len(self.values),)
        return lead + (len(self.seeds),)

    @property
    def n_cells(self) -> int:
        return math.prod(self.shape)

    def index(self, flat: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(flat, self.shape))

    def cell_values(self, flat: int) -> tuple[dict[str, Any], int]:
        """The swept values of cell `flat` (field path -> value) and its seed."""
        idx = self.index(flat)
        vals = ([self.values[j][i] for j, i in enumerate(idx[:-1])] if self.design == "grid"
                else list(self.values[idx[0]]))
        return {f.path: v for f, v in zip(self.fields, vals)}, self.seeds[idx[-1]]

    def describe(self, flat: int) -> str:
        vals, seed = self.cell_values(flat)
        named = {f.name: vals[f.path] for f in self.fields}
        return ",".join(f"{k}={json.dumps(v) if isinstance(v, (list, str)) else v}" for k, v in named.items()) + f",seed={seed}"

    def raw_config(self, flat: int) -> dict[str, Any]:
        raw = copy.deepcopy(self.base)
        vals, seed = self.cell_values(flat)
        for f in self.fields:
            f.set(raw, vals[f.path])
        for path in self.seed_fields:
            sec, _, key = path.partition(".")
            raw.setdefault(sec, {})[key] = seed
        return raw

    def cell_config(self, flat: int) -> dict[str, dict[str, Any]]:
        """The validated config of one cell; a bad value is a ConfigError naming the cell and the field."""
        try:
            return validate(self.raw_config(flat))
        except ConfigError as err:
            raise ConfigError(f"config: [sweep] cell {self.describe(flat)}: {str(err).removeprefix('config: ')}") from None

    @cached_property
    def coords(self) -> dict[str, Any]:
        """Coordinate values per field, as stored: numbers, bools, strings; lists as JSON text."""
        def conv(f: Field, vals: list[Any]) -> np.ndarray:
            if f.kind == "list":
                return np.array([json.dumps(v) for v in vals], dtype=object)
            if f.kind == "str":
                return np.array(vals, dtype=object)
            if f.kind == "bool":
                return np.array(vals, dtype=bool)
            if f.kind == "int":
                return np.array(vals, dtype=np.int64)
            return np.array(vals, dtype=float)
        if self.design == "grid":
            return {f.name: conv(f, list(v)) for f, v in zip(self.fields, self.values)}
        return {f.name: conv(f, [s[j] for s in self.values]) for j, f in enumerate(self.fields)}


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= 10**5:
            raise _err("seeds", f"a number of repeats must be in 1..100000, got {value}")
        return tuple(range(value))
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        if len(set(value)) != len(value):
            raise _err("seeds", f"the seeds must be distinct, got {value}")
        return tuple(value)
    raise _err("seeds", f"must be a number of repeats or a non-empty list of integers >= 0, got {value!r}")

def parse_sweep(text: str, name: str = "config") -> SweepSpec:
    """Parse a config's text into a `SweepSpec`; every error is a one-line ConfigError naming the field."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config: malformed TOML in {name}: {err}") from None
    except RecursionError:
        raise ConfigError(f"config: {name} nests arrays or tables too deeply to parse") from None
    sw = raw.pop("sweep", None)
    if not isinstance(sw, dict):
        raise ConfigError("config: a sweep needs a [sweep] section (see cdyn sweep --help)")
    validate(raw)  # the base config alone: unknown keys and wrong types named as everywhere else
    for key in sw:
        if key not in KEYS:
            raise _err(key, f"unknown key (known: {', '.join(KEYS)})")
    design = sw.get("design", "grid")
    if design not in DESIGNS:
        raise _err("design", f"unknown design {design!r} (choose {', '.join(DESIGNS)})")
    for key, allowed in (("init", INITS), ("train", TRAINS)):
        if sw.get(key, allowed[0]) not in allowed:
            raise _err(key, f"must be one of {', '.join(allowed)}, got {sw[key]!r}")
    batch = sw.get("batch", 0)
    if isinstance(batch, bool) or not isinstance(batch, int) or not 0 <= batch <= 10**4:
        raise _err("batch", f"cells per task must be an integer in 0..10000 (0: automatic), got {batch!r}")
    if design == "grid":
        for key in ("ranges", "samples", "seed"):
            if key in sw:
                raise _err(key, "belongs to a random or lhs design; a grid takes [sweep.grid]")
        fields, values = _grid(sw.get("grid"), raw)
    else:
        if "grid" in sw:
            raise _err("grid", f"design = '{design}' takes [sweep.ranges], not [sweep.grid]")
        fields, values = _ranges(sw.get("ranges"), raw, design, sw.get("samples"), sw.get("seed", 0))
    fields = _names(fields)
    seeds = _seeds(sw.get("seeds", 1))
    sf = sw.get("seed_fields", ["problem.seed", "init.seed", "train.seed"])
    if not isinstance(sf, list) or not all(isinstance(s, str) for s in sf):
        raise _err("seed_fields", f"must be a list of field names, got {sf!r}")
    for s in sf:
        sec, _, key = s.partition(".")
        if sec not in SECTIONS or SCHEMA[sec].get(key, ((),))[0] != (int,):
            raise _err("seed_fields", f"{s!r} is not an integer field of {', '.join(SECTIONS)}")
        if any(f.path == s for f in fields):
            raise _err("seed_fields", f"{s} is also a swept field; drop it from one of them")
    workers, scheduler = sw.get("workers"), sw.get("scheduler")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or not 0 <= workers <= 1024):
        raise _err("workers", f"must be an integer in 0..1024 (0: serial), got {workers!r}")
    if scheduler is not None and not isinstance(scheduler, str):
        raise _err("scheduler", f"must be an address such as tcp://127.0.0.1:8786, got {scheduler!r}")
    spec = SweepSpec(text, raw, design, fields, seeds, tuple(sf), sw.get("init", "random"), sw.get("train", "none"),
                     batch, workers, scheduler, values)
    if spec.n_cells > MAX_CELLS:
        raise _err("grid" if design == "grid" else "samples", f"{spec.n_cells} cells is more than a sweep runs "
                   f"(max {MAX_CELLS})")
    return spec


def representative_cells(spec: SweepSpec, limit: int = 2000) -> list[int]:
    """Cells whose full check covers every value (all cells when few): each grid value with the other
    fields at their first value, or the samples holding each field's extremes, plus the first and last cell."""
    if spec.n_cells <= limit:
        return list(range(spec.n_cells))
    last = spec.shape[:-1]
    picks = {0, spec.n_cells - 1}
    if spec.design == "grid":
        for j, n in enumerate(last):
            for i in range(n):
                idx = [0] * len(last) + [0]
                idx[j] = i
                picks.add(int(np.ravel_multi_index(idx, spec.shape)))
    else:
        for j in range(len(spec.fields)):
            col = [s[j] for s in spec.values]
            for i in (int(np.argmin(col)), int(np.argmax(col))):
                picks.add(int(np.ravel_multi_index((i, 0), spec.shape)))
    return sorted(picks)


def identity(text: str) -> dict[str, Any]:
    """What a store's numbers depend on: the parsed config without the engine keys of [sweep]."""
    raw = tomllib.loads(text)
    raw["sweep"] = {k: v for k, v in raw.get("sweep", {}).items() if k not in ENGINE_KEYS}
    return raw
