"""Axes of sweep figures: names in the theory's notation, scales chosen from the swept values, and
heatmap cell edges that sit halfway between grid values on whatever scale the axis uses."""

from __future__ import annotations

import re
import tomllib
from typing import Any, Callable

import matplotlib.ticker
import numpy as np
import xarray as xr

#: The config path of λ: when it is an axis, the border λ = 0 (no stage 2) is drawn.
LAMBDA = "problem.lam"
#: The config path of the init scale s: THEORY §5 makes t* linear in ln(1/s), so line plots use that axis.
INIT_SCALE = "init.scale"
#: Positive values spanning more than this factor (and crowded low, as log-spaced values are) get a log axis.
LOG_AXIS = 10.0

LABELS = {
    "t_peak": "measured peak time t*", "t_peak_pred": "predicted peak time t̂*", "kappa_peak": "peak κ",
    "kappa_final": "final κ", "kappa_limit": "CCA limit (ρ₁/ρ_k)²", "eig_ratio": "final |λ₁/λ_k| of M",
    "rate1": "stage-1 rate of log κ", "rate1_pred": "predicted stage-1 rate", "rate2": "stage-2 rate of log κ",
    "rate2_pred": "predicted stage-2 rate", "t_status": "time of the status", "train_gap": "training gap to the flow",
    "wall": "wall time per cell [s]",
}


def label(name: str, ds: xr.Dataset | None = None) -> str:
    """An outcome's name in words, or a swept field as `key (config.path)`."""
    if name in LABELS:
        return LABELS[name]
    if ds is not None and name in ds.coords:
        path = str(ds[name].attrs.get("field", name))
        sym = "λ" if path == LAMBDA else name
        return f"{sym} ({path})" if path != sym else sym
    return name


def transform_name(ds: xr.Dataset, key: str) -> tuple[str, Callable[[np.ndarray], np.ndarray]] | None:
    """The init scale s is shown as ln(1/s) on line plots (the axis on which t* is linear)."""
    if str(ds[key].attrs.get("field", key)) == INIT_SCALE:
        return f"ln(1/s), s = init scale ({INIT_SCALE})", lambda v: np.log(1.0 / np.asarray(v, float))
    return None


def categories(ds: xr.Dataset, key: str) -> list[str] | None:
    """The values of a text field (a method, a loss, a list stored as JSON) in store order; None if numeric."""
    if ds[key].dtype.kind in "fiub":
        return None
    return [str(v) for v in np.asarray(ds[key].values).ravel()]


def axis_values(ds: xr.Dataset, key: str) -> np.ndarray:
    """Positions on the axis: the values of a numeric field; 0, 1, … for the values of a text field."""
    names = categories(ds, key)
    return np.asarray(ds[key].values, dtype=float) if names is None else np.arange(len(names), dtype=float)


def category_ticks(ax: Any, which: str, ds: xr.Dataset, key: str) -> None:
    """A text field's values as the tick labels at its positions (nothing for a numeric field)."""
    names = categories(ds, key)
    if names is None:
        return
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_ticks(np.arange(len(names), dtype=float), labels=names)
    axis.set_minor_locator(matplotlib.ticker.NullLocator())


def _is_lambda(ds: xr.Dataset, key: str) -> bool:
    return str(ds[key].attrs.get("field", key)) == LAMBDA


def set_scale(ax: Any, which: str, ds: xr.Dataset, key: str, values: np.ndarray) -> str:
    """Log for positive values spanning > `LOG_AXIS`; λ on a wide range gets symlog so λ = 0 is on the axis."""
    v = np.unique(values[np.isfinite(values)])
    setter = ax.set_xscale if which == "x" else ax.set_yscale
    pos = v[v > 0]
    # Log-spaced values crowd below the arithmetic midpoint of their range; uniform ones do not.
    crowded = pos.size >= 2 and (v < (v.min() + v.max()) / 2).mean() > 2 / 3
    wide = crowded and pos.max() / pos.min() > LOG_AXIS
    if _is_lambda(ds, key) and wide and v.min() >= 0:
        setter("symlog", linthresh=float(pos.min()), linscale=0.6)
        return "symlog"
    if wide and v.min() > 0:
        setter("log")
        return "log"
    setter("linear")
    return "linear"


def cell_edges(ax: Any, which: str, values: np.ndarray) -> np.ndarray:
    """Edges of heatmap cells: midpoints between sorted centres in the axis's own coordinates."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    tr = axis.get_transform()
    c = tr.transform(np.asarray(values, float).reshape(-1, 1)).ravel()
    if c.size == 1:
        half = 0.5 if axis.get_scale() != "linear" else max(0.5 * abs(float(c[0])), 0.5)
        t = np.array([c[0] - half, c[0] + half])
    else:
        mid = (c[1:] + c[:-1]) / 2
        t = np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])
    return tr.inverted().transform(t.reshape(-1, 1)).ravel()


_ELEMENT = re.compile(r"^problem\.(spectrum_[AB])\[(\d+)\]$")


def anisotropy(ds: xr.Dataset, key: str, values: np.ndarray) -> tuple[str, np.ndarray] | None:
    """For a swept element of `spectrum_A`/`spectrum_B`: that view's anisotropy max/min of its spectrum at
    each value (the other elements from the store's config, read as TOML data)."""
    m = _ELEMENT.match(str(ds[key].attrs.get("field", "")))
    if m is None or not len(values):
        return None
    try:
        base = tomllib.loads(str(ds.attrs.get("config_toml", ""))).get("problem", {}).get(m.group(1))
    except tomllib.TOMLDecodeError:
        return None
    i = int(m.group(2))
    if not isinstance(base, list) or i >= len(base):
        return None
    spec = np.array([float(v) for v in base])
    out = []
    for v in values:
        spec[i] = v
        out.append(np.abs(spec).max() / np.abs(spec).min())
    return f"anisotropy κ({m.group(1)[-1]}) = max/min of {m.group(1)}", np.array(out)


def anisotropy_axis(ax: Any, which: str, ds: xr.Dataset, key: str, values: np.ndarray) -> None:
    """A second axis (top or right) labelled with the anisotropy at each swept value, when there is one."""
    found = anisotropy(ds, key, values)
    if found is None:
        return
    name, kap = found
    twin = ax.secondary_xaxis("top") if which == "x" else ax.secondary_yaxis("right")
    twin.set_ticks(values, labels=[f"{k:.3g}" for k in kap])
    (twin.set_xlabel if which == "x" else twin.set_ylabel)(name, fontsize=8)
    twin.tick_params(labelsize=7)
    if which == "x":
        twin.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    else:
        twin.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def value_ticks(ax: Any, which: str, values: np.ndarray, most: int = 12) -> None:
    """Ticks at the swept values themselves (a grid of at most `most` values), plain numbers, no minor ticks."""
    v = np.unique(np.asarray(values, float))
    if not 1 <= v.size <= most:
        return
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_ticks(v, labels=[f"{x:g}" for x in v])
    axis.set_minor_locator(matplotlib.ticker.NullLocator())
