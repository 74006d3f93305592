r"""Line plots of a sweep: an outcome against one swept field, mean over seeds with a band, the
prediction over it, and — on the axis $\ln(1/s)$ of the init scale — fitted slopes.

THEORY §5: with balanced init $X_0 = s^2$ the peak time is, to leading order,
$\hat t^* = \frac{1}{2g_1}\ln\frac{1}{X_0} + c = \frac{1}{g_1}\ln\frac1s + c$, a line in $\ln(1/s)$.
The measured slope is the least-squares slope of every (cell, seed) value of $t^*$ against
$\ln(1/s)$, with its standard error; the predicted slope is that of $\hat t^*$ on the same cells.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from ._sweep_axes import (
    LAMBDA, anisotropy_axis, axis_values, categories, category_ticks, label, set_scale, transform_name, value_ticks,
)
from ._sweep_plot import SweepFigure, _compare_line, _finish, _status_line, _what
from ._sweep_view import View, field_path


def fit_line(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Least-squares slope, intercept, standard error of the slope and max |residual| (finite points)."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(x.size)
    if n < 2 or np.ptp(x) == 0:
        return {"n": n, "slope": float("nan"), "intercept": float("nan"), "se": float("nan"), "max_resid": float("nan")}
    xm, ym = x.mean(), y.mean()
    sxx = float(((x - xm) ** 2).sum())
    slope = float(((x - xm) * (y - ym)).sum() / sxx)
    icpt = float(ym - slope * xm)
    resid = y - (icpt + slope * x)
    se = float(np.sqrt((resid ** 2).sum() / (n - 2) / sxx)) if n > 2 else float("nan")
    return {"n": n, "slope": slope, "intercept": icpt, "se": se, "max_resid": float(np.abs(resid).max())}


def _xvalues(view: View) -> np.ndarray:
    key = view.axes[0]
    return axis_values(view.ds, key) if view.design == "grid" else np.asarray(view.ds[key].values, float)


def line_plot(view: View) -> SweepFigure:
    """`z` against `x`: mean over seeds, band over seeds, prediction, non-converged points marked."""
    key = view.axes[0]
    xv = _xvalues(view)
    tf = transform_name(view.ds, key)
    xt = tf[1](xv) if tf else xv
    order = np.argsort(xt)
    fig, ax = plt.subplots(figsize=(7.8, 5.2))
    if tf is None:
        set_scale(ax, "x", view.ds, key, xv)
        if view.design == "grid":
            value_ticks(ax, "x", xv)
            category_ticks(ax, "x", view.ds, key)
        anisotropy_axis(ax, "x", view.ds, key, np.unique(xv) if view.design == "grid" else np.array([]))
    mean = np.asarray(view.mean().values, float)
    lo, hi, band = (np.asarray(a.values, float) if hasattr(a, "values") else a for a in view.band())
    ns = view.n_seeds
    style = "o-" if categories(view.ds, key) is None else "o"  # no line between categories
    ax.plot(xt[order], mean[order], style, color="C0", lw=1.8, ms=4, label=f"{label(view.z)}, mean over {ns} seeds")
    if ns > 1:
        ax.fill_between(xt[order], lo[order], hi[order], color="C0", alpha=0.25, lw=0,
                        label=f"{band} band over {ns} seeds")
    caption = [_status_line(view)]
    fits: dict[str, dict[str, float]] = {}
    pred = view.prediction
    if pred is not None:
        pm = np.asarray(view.mean(pred).values, float)
        plo, phi, _ = view.band(pred)
        plo, phi = np.asarray(plo.values, float), np.asarray(phi.values, float)
        ax.plot(xt[order], pm[order], "--", color="C3", lw=1.8, label=f"prediction: {label(pred)}")
        if ns > 1 and np.nanmax(np.abs(phi - plo), initial=0.0) > 0:
            ax.fill_between(xt[order], plo[order], phi[order], color="C3", alpha=0.12, lw=0)
        if (line := _compare_line(view)) is not None:
            caption.append(line)
    bad = np.asarray(view.bad.values) > 0
    if bad.any():
        ax.plot(xt[bad], mean[bad], "x", color="0.3", ms=9, mew=2, label="not converged (≥ 1 seed)")
    if tf is not None and pred is not None:
        per_seed = np.asarray(view.per_seed[view.z].values, float)  # (points, seed)
        fm = fit_line(np.repeat(xt, per_seed.shape[1]), per_seed.ravel())
        fp = fit_line(xt, np.asarray(view.mean(pred).values, float))
        fits = {"measured": fm, "predicted": fp}
        grid = np.linspace(np.nanmin(xt), np.nanmax(xt), 50)
        ax.plot(grid, fm["intercept"] + fm["slope"] * grid, ":", color="C0", lw=1.2,
                label=f"fit to measured: slope {fm['slope']:.4g} ± {fm['se']:.2g}")
        ax.plot([], [], " ", label=f"predicted slope d t̂*/d ln(1/s): {fp['slope']:.4g}")
        caption.append(f"slope of {view.z} against ln(1/s): measured {fm['slope']:.4g} ± {fm['se']:.2g} "
                       f"(standard error, {fm['n']} cell-seed values) vs predicted {fp['slope']:.4g} "
                       f"(max deviation of t̂* from a line {fp['max_resid']:.2g})")
    if field_path(view.ds, key) == LAMBDA:
        ax.axvline(0.0, color="crimson", lw=2.0, ls="-.", label="λ = 0: no negative pairs, stage 2 absent")
        caption.append("λ = 0 (dash-dot): no negative pairs, so κ never falls (stage 2 absent)")
    if np.isnan(mean).any():
        caption.append(f"{int(np.isnan(mean).sum())} of {mean.size} points have no value (NaN: not applicable)")
    if view.z.startswith("kappa") or view.z == "eig_ratio":
        _log_if_wide(ax, mean, pred and np.asarray(view.mean(pred).values, float))
    ax.set_xlabel(tf[0] if tf else label(key, view.ds))
    ax.set_ylabel(label(view.z))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    title = f"{label(view.z)} against {key} ({_what(view)})"
    return _finish(fig, title, caption, fits)


def _log_if_wide(ax: Any, mean: np.ndarray, pred: Any) -> None:
    v = np.concatenate([mean, pred if isinstance(pred, np.ndarray) else np.array([])])
    v = v[np.isfinite(v)]
    if v.size and v.min() > 0 and v.max() / v.min() > 30:
        ax.set_yscale("log")
