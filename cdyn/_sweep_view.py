"""What a sweep figure shows: one outcome of a sweep store, reduced to the plotted axes.

A store (`cdyn sweep`) is an xarray Dataset. A **grid** design has one dimension per swept field
(named by the field's key, with attr `field`, e.g. `lam` with `field="problem.lam"`) and `seed`; a
**random/LHS** design has the dimension `sample` (and `seed`) with one coordinate per field. A view
keeps the plotted fields (`x`, and `y` for a phase diagram), selects the fields named by `--fix`,
and averages over the rest only when `--average` asks; a field with several values that is neither
plotted, fixed nor averaged is an error, because silently averaging it would hide a dimension.

Seeds are always reduced: the figure shows the mean over seeds and the spread (max − min over
seeds, or a quantile band from `QUANTILE_FROM` seeds on). Values given on the command line are
parsed as floats, never evaluated.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

#: What the theory predicts for an outcome (THEORY §5–§6): drawn over the measurement.
PREDICTION = {"t_peak": "t_peak_pred", "kappa_final": "kappa_limit", "eig_ratio": "kappa_limit",
              "rate1": "rate1_pred", "rate2": "rate2_pred"}
#: Status of a cell whose outcomes are complete; every other status is marked and counted.
GOOD = "converged"
#: From this many seeds on, the band is the 10–90% quantile band instead of min–max.
QUANTILE_FROM = 10
#: A `--fix` value matches a stored coordinate to this relative tolerance (values are written
#: from floats of the config; a decimal typed by the user may differ in the last bits).
MATCH_RTOL = 1e-9


def open_store(path: str | Path) -> xr.Dataset:
    """The Dataset of a sweep store; a missing or unreadable store is an error naming the store."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"store: no such sweep store {str(path)!r}")
    if not path.is_dir():
        raise ValueError(f"store: {str(path)!r} is not a Zarr directory (a sweep store is one)")
    try:
        return xr.open_zarr(path, consolidated=False).load()
    except Exception as err:  # zarr raises several unrelated types for a directory that is not a store
        raise ValueError(f"store: {str(path)!r} is not a readable sweep store ({type(err).__name__}: {err})") from None


def design(ds: xr.Dataset) -> str:
    """`grid` or `sample` (random or Latin-hypercube)."""
    return "sample" if "sample" in ds.dims else "grid"


def swept_fields(ds: xr.Dataset) -> list[str]:
    """The keys of the swept fields, in store order."""
    if design(ds) == "grid":
        return [str(d) for d in ds.dims if d != "seed"]
    return [str(c) for c in ds.coords if c not in ds.dims and ds[c].dims == ("sample",)]


def outcomes(ds: xr.Dataset) -> list[str]:
    """Variables that can be plotted: the float outcomes of each cell."""
    return [str(v) for v in ds.data_vars if ds[v].dtype.kind == "f" and "seed" in ds[v].dims]


def field_path(ds: xr.Dataset, key: str) -> str:
    """`problem.lam` for `lam`: the config path of a swept field (the key itself if the store has none)."""
    return str(ds[key].attrs.get("field", key))


def check_names(ds: xr.Dataset, x: str, y: str | None, z: str) -> None:
    """Unknown outcome or axis: a ValueError naming the option and what the store offers."""
    outs, fields = outcomes(ds), swept_fields(ds)
    if z not in ds.data_vars:
        raise ValueError(f"z: unknown outcome {z!r}; this store has {', '.join(outs)}")
    if z not in outs:
        raise ValueError(f"z: {z!r} is not a numeric outcome; plot one of {', '.join(outs)}")
    for opt, key in (("x", x), ("y", y)):
        if key is not None and key not in fields:
            what = "the seed dimension is averaged, not an axis" if key == "seed" else f"{key!r} is not a swept field"
            raise ValueError(f"{opt}: {what}; the swept fields of this store are {', '.join(fields) or '(none)'}")
        if key is not None and not _numeric(ds, key) and design(ds) != "grid":
            raise ValueError(f"{opt}: {key} takes non-numeric values ({_values_text(ds[key].values)}); on a "
                             f"{design(ds)} design an axis needs a numeric field (hold {key} with --fix {key}=VALUE)")
    if y is not None and y == x:
        raise ValueError(f"y: the same field as --x ({x!r}); a phase diagram needs two different fields")


def parse_fix(items: list[str], ds: xr.Dataset, axes: tuple[str, ...]) -> dict[str, float | str]:
    """`["noise=0.1"]` → `{"noise": 0.1}`; each name a swept field off the axes, each value a float."""
    fields, fixed = swept_fields(ds), {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"fix: expected FIELD=VALUE (e.g. noise=0.1), got {item!r}")
        if name not in fields:
            raise ValueError(f"fix: {name!r} is not a swept field; the swept fields are {', '.join(fields)}")
        if name in axes:
            raise ValueError(f"fix: {name!r} is plotted on an axis; it cannot also be fixed")
        if name in fixed:
            raise ValueError(f"fix: {name!r} is fixed twice")
        if not _numeric(ds, name):  # a string or list field (stored as JSON text): matched as text
            fixed[name] = text.strip()
            continue
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"fix: {name}: expected a number, got {text.strip()!r}") from None
        if not np.isfinite(value):
            raise ValueError(f"fix: {name}: expected a finite number, got {text.strip()!r}")
        fixed[name] = value
    return fixed


def _numeric(ds: xr.Dataset, key: str) -> bool:
    return ds[key].dtype.kind in "fiub"


def _values_text(values: np.ndarray) -> str:
    vals = np.unique(np.asarray(values).astype(object if np.asarray(values).dtype.kind not in "fiub" else float))
    if vals.dtype == object:
        return ", ".join(str(v) for v in vals[:8]) + (f", … ({len(vals)} values)" if len(vals) > 8 else "")
    shown = ", ".join(f"{v:.6g}" for v in vals[:8])
    return shown + (f", … ({len(vals)} values)" if len(vals) > 8 else "")


def _select(ds: xr.Dataset, fixed: dict[str, float]) -> xr.Dataset:
    """Keep the cells at the fixed values (exact to `MATCH_RTOL`); a value not stored is an error."""
    for name, value in fixed.items():
        if isinstance(value, str):
            coord = np.asarray(ds[name].values).astype(object).astype(str)
            hit = coord == value
        else:
            coord = np.asarray(ds[name].values, dtype=float)
            hit = np.isclose(coord, value, rtol=MATCH_RTOL, atol=0.0)
        if not hit.any():
            raise ValueError(f"fix: {name}={value} is not a value of the sweep; {name} takes {_values_text(coord)}")
        if design(ds) == "grid":
            ds = ds.isel({name: int(np.flatnonzero(hit)[0])}, drop=True)
        else:
            ds = ds.isel(sample=np.flatnonzero(hit))
    return ds


@dataclass
class View:
    """One outcome reduced to the plotted axes: per-seed values and their summaries over seeds.

    `per_seed[z]` has dims `(*axes, "seed")` on a grid, `("sample", "seed")` otherwise (with the
    axes as coordinates of `sample`); averaged fields are already averaged out of it (NaN-aware)."""

    ds: xr.Dataset
    z: str
    axes: tuple[str, ...]
    design: str
    fixed: dict[str, float]
    averaged: list[str]
    per_seed: dict[str, xr.DataArray]
    #: Per plotted point: how many underlying cells (seeds × averaged cells) are not `converged`.
    bad: xr.DataArray
    cells: int
    statuses: Counter = field(default_factory=Counter)

    @property
    def prediction(self) -> str | None:
        name = PREDICTION.get(self.z)
        return name if name in self.per_seed else None

    @property
    def n_seeds(self) -> int:
        return int(self.per_seed[self.z].sizes["seed"])

    def mean(self, var: str | None = None) -> xr.DataArray:
        return self.per_seed[var or self.z].mean("seed", skipna=True)

    def band(self, var: str | None = None) -> tuple[xr.DataArray, xr.DataArray, str]:
        """Lower and upper edge of the band over seeds and its name (`min–max` or `10–90% quantile`)."""
        da = self.per_seed[var or self.z]
        if self.n_seeds >= QUANTILE_FROM:
            q = da.quantile([0.1, 0.9], dim="seed", skipna=True)
            return q.isel(quantile=0, drop=True), q.isel(quantile=1, drop=True), "10–90% quantile"
        return da.min("seed", skipna=True), da.max("seed", skipna=True), "min–max"

    def spread(self) -> xr.DataArray:
        lo, hi, _ = self.band()
        return hi - lo


def _config_terms(ds: xr.Dataset) -> tuple[str, ...] | None:
    """`[run] terms` of the store's config (parsed as TOML data, never evaluated)."""
    import tomllib

    try:
        terms = tomllib.loads(str(ds.attrs.get("config_toml", ""))).get("run", {}).get("terms")
    except tomllib.TOMLDecodeError:
        return None
    return tuple(terms) if isinstance(terms, list) else None


def _where_cca_limit(sub: xr.Dataset, limit: xr.DataArray) -> xr.DataArray:
    r"""$(\rho_1/\rho_k)^2$ is the limit of `pos + neg` with $\lambda > 0$ only (THEORY §6): elsewhere NaN."""
    swept = {field_path(sub, f): f for f in swept_fields(sub) if f in sub.coords}
    terms = _config_terms(sub)
    if "run.terms" not in swept and terms is not None and set(terms) != {"pos", "neg"}:
        return limit * np.nan
    if "problem.lam" in swept:
        limit = limit.where(sub[swept["problem.lam"]].astype(float) > 0)
    return limit


def _nanmean(da: xr.DataArray, dims: list[str]) -> xr.DataArray:
    # All-NaN slices stay NaN (not applicable anywhere) without a RuntimeWarning.
    return da.mean(dims, skipna=True) if dims else da


def make_view(ds: xr.Dataset, x: str, y: str | None, z: str, fix: list[str] | None = None,
              average: bool = False) -> View:
    """Check the names, select `--fix`, average the remaining fields if asked, keep seeds."""
    check_names(ds, x, y, z)
    axes = (x,) if y is None else (x, y)
    fixed = parse_fix(list(fix or []), ds, axes)
    kind = design(ds)
    sub = _select(ds, fixed)
    if kind == "grid":  # heatmap cells and lines need increasing coordinates
        sub = sub.sortby(list(axes))
    rest = [f for f in swept_fields(ds) if f not in axes and f not in fixed]
    if kind == "grid":
        several = [f for f in rest if sub.sizes.get(f, 1) > 1]
    else:
        several = [f for f in rest if np.unique(np.asarray(sub[f].values).astype(str)).size > 1]
    if several and not average:
        f = several[0]
        raise ValueError(f"fix: {f} takes {_values_text(sub[f].values)}; "
                         f"fix it (--fix {f}=VALUE) or average over it (--average)")
    averaged = several if average else []
    if sub.sizes.get("sample", 1) == 0:
        raise ValueError("fix: no sample of the sweep has all the fixed values")
    reduce_dims = [f for f in rest if f in sub.dims]  # grid fields off the axes (single-valued or averaged)
    names = [v for v in (z, PREDICTION.get(z)) if v is not None and v in sub.data_vars]
    data = {v: sub[v].astype(float) for v in names}
    if PREDICTION.get(z) == "kappa_limit" and "kappa_limit" in data:
        data["kappa_limit"] = _where_cca_limit(sub, data["kappa_limit"])
    per_seed = {v: _nanmean(d, reduce_dims) for v, d in data.items()}
    if "status" in sub.data_vars:  # NumPy StringDType when read back: compare as Python strings
        status = sub["status"].copy(data=np.asarray(sub["status"].values).astype(object))
    else:
        status = xr.full_like(sub[z], GOOD, dtype=object)
    not_good = status != GOOD
    if "done" in sub.data_vars:  # a cell not computed yet is missing, not failed
        not_good = not_good & sub["done"].astype(bool)
    keep = [d for d in not_good.dims if d in (axes if kind == "grid" else ("sample",))]
    bad = not_good.sum([d for d in not_good.dims if d not in keep])
    done = sub["done"].values.astype(bool) if "done" in sub.data_vars else np.ones(status.shape, bool)
    statuses = Counter(str(s) for s in np.asarray(status.values)[done].ravel())
    if kind == "grid":
        per_seed = {k: v.transpose(*axes, "seed") for k, v in per_seed.items()}
        bad = bad.transpose(*axes)
    return View(sub, z, axes, kind, fixed, averaged, per_seed, bad, int(done.sum()), statuses)
