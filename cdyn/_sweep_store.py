"""The sweep store: an xarray Dataset in a Zarr directory, one dimension per swept field (+ `seed`).

Why Zarr rather than netCDF: a cell is written *in place* as soon as it finishes (a region of
each variable), and every chunk file is replaced atomically (write + rename), so a sweep killed
at any moment leaves every finished cell readable and loses only the cells in flight. netCDF/HDF5
rewrites in place inside one file, where a kill mid-write can corrupt the whole file.

Each write sets the outcome variables first and `done` last, so a cell marked done has all its
outcomes. The store is created whole in a hidden sibling directory and renamed into place.
Metadata is not consolidated (attrs change on every run): open it with `open_store`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._config import ConfigError
from ._sweep_cell import FLOAT_VARS
from ._sweep_spec import SweepSpec, identity

STRING_VARS = ("status", "reason")
#: A chunk holds at most this many cells: a region write rewrites a chunk file, not the whole array.
CHUNK_CELLS = 4096


class StoreMismatch(ConfigError):
    """The store at --out was made by a different config or plugins."""


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("contrastive-dynamics")
    except PackageNotFoundError:
        return "unknown"


def _chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Keep the trailing dimensions whole while a chunk stays under CHUNK_CELLS cells."""
    out, size = [], 1
    for n in reversed(shape):
        c = max(1, min(n, CHUNK_CELLS // size))
        out.append(c)
        size *= c
    return tuple(reversed(out))


def empty_dataset(spec: SweepSpec, attrs: dict[str, Any]) -> Any:
    """The dataset of a sweep with nothing computed yet: NaN, "", done = False, run = -1."""
    import xarray as xr

    dims, shape = spec.dims, spec.shape
    data: dict[str, Any] = {k: (dims, np.full(shape, np.nan)) for k in FLOAT_VARS}
    data |= {k: (dims, np.full(shape, "", dtype=object)) for k in STRING_VARS}
    data["done"] = (dims, np.zeros(shape, dtype=bool))
    data["run"] = (dims, np.full(shape, -1, dtype=np.int32))
    coords: dict[str, Any] = {"seed": ("seed", np.array(spec.seeds, dtype=np.int64))}
    for f in spec.fields:
        vals = spec.coords[f.name]
        coords[f.name] = (f.name if spec.design == "grid" else "sample", vals, {"field": f.path, "kind": f.kind})
    if spec.design != "grid":
        coords["sample"] = ("sample", np.arange(shape[0], dtype=np.int64))
    ds = xr.Dataset(data, coords=coords)
    ds.attrs = {"config_toml": spec.text, "design": spec.design, "seeds": json.dumps(list(spec.seeds)),
                "fields": json.dumps([{"name": f.name, "field": f.path, "kind": f.kind} for f in spec.fields]),
                "init": spec.init, "train": spec.train, "version": package_version(), "runs": "[]"} | attrs
    return ds


def create_store(path: Path, spec: SweepSpec, attrs: dict[str, Any]) -> None:
    """Write the empty store into a hidden sibling, then rename it to `path` (never half a store)."""
    ds = empty_dataset(spec, attrs)
    tmp = path.parent / f".{path.name}.creating-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    chunks = _chunks(spec.shape)
    enc = {v: {"chunks": chunks} for v in ds.data_vars}
    try:
        ds.to_zarr(tmp, mode="w-", consolidated=False, encoding=enc)
        if path.exists():
            _swap(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap(tmp: Path, path: Path) -> None:
    """--force: the new store replaces the old one (the old one removed after the rename)."""
    old = path.parent / f".{path.name}.old-{os.getpid()}"
    os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def open_store(path: str | Path, load: bool = True) -> Any:
    """The store as an xarray Dataset (loaded into memory unless `load=False`)."""
    import xarray as xr

    p = Path(path)
    if not (p / "zarr.json").is_file() and not (p / ".zgroup").is_file():
        raise ConfigError(f"store: {str(p)!r} is not a sweep store (no Zarr group there)")
    ds = xr.open_zarr(p, consolidated=False)
    return ds.load() if load else ds


def check_matches(path: Path, spec: SweepSpec, plugins: str) -> None:
    """Refuse to resume a store made by another config or other plugin files."""
    import zarr

    attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    if identity(str(attrs.get("config_toml", ""))) != identity(spec.text):
        raise StoreMismatch(f"out: the store {str(path)!r} was made by a different config; use a new --out, "
                            "or --force to replace it")
    if json.loads(attrs.get("plugins", "[]")) != json.loads(plugins):
        raise StoreMismatch(f"out: the store {str(path)!r} was made with other plugins ({attrs.get('plugins')}); "
                            "load the same --plugin files, use a new --out, or --force to replace it")


class StoreWriter:
    """Region writes of finished cells into an existing store (one writer: the driver)."""

    def __init__(self, path: Path, spec: SweepSpec):
        import zarr

        self.group = zarr.open_group(str(path), mode="r+")
        self.spec = spec
        self.arrays = {k: self.group[k] for k in (*FLOAT_VARS, *STRING_VARS, "run", "done")}

    def todo(self) -> list[int]:
        """Flat indices of the cells not yet done."""
        return [int(i) for i in np.flatnonzero(~np.asarray(self.arrays["done"][...]).ravel())]

    def start_run(self, command: str) -> int:
        """Record this invocation; returns its index (stored per cell in `run`)."""
        runs = json.loads(self.group.attrs.get("runs", "[]"))
        runs.append({"command": command, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        self.group.attrs["runs"] = json.dumps(runs)
        return len(runs) - 1

    def write(self, results: list[tuple[int, dict[str, Any]]], run: int) -> None:
        """Write the outcomes of finished cells, then mark them done."""
        if not results:
            return
        idx = tuple(np.array(ax) for ax in zip(*(self.spec.index(flat) for flat, _ in results)))
        for k in FLOAT_VARS:
            self.arrays[k].vindex[idx] = np.array([r[k] for _, r in results], dtype=float)
        for k in STRING_VARS:
            self.arrays[k].vindex[idx] = np.array([str(r[k]) for _, r in results], dtype=object)
        self.arrays["run"].vindex[idx] = np.full(len(results), run, dtype=np.int32)
        self.arrays["done"].vindex[idx] = np.ones(len(results), dtype=bool)

    def finish_run(self, run: int, computed: int) -> None:
        runs = json.loads(self.group.attrs.get("runs", "[]"))
        runs[run]["cells"] = computed
        self.group.attrs["runs"] = json.dumps(runs)
