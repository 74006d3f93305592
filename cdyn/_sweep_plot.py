r"""Figures of a sweep store: phase diagrams and line plots, with the theory drawn over the data.

* **Phase diagram** (`x` and `y`): the mean over seeds of an outcome as a heatmap (grid design) or
  as filled triangulated contours under the sample points (random/LHS design), beside a panel of
  its spread over seeds. The prediction of THEORY §5–§6 is drawn as labelled contour lines on the
  same colour scale: $\hat t^*$ over the measured $t^*$, the CCA limit $(\rho_1/\rho_k)^2$ over the
  final $\kappa$, the predicted stage rates over the measured ones. When $\lambda$ is an axis, the
  line $\lambda = 0$ (no negative pairs: weight decay alone, no stage 2) is drawn.
* **Line plot** (`x` only): the mean over seeds with a band (min–max, or 10–90% quantile from
  `QUANTILE_FROM` seeds on; the legend says which) and the prediction. An init scale $s$ is plotted
  against $\ln(1/s)$, where THEORY predicts $t^*$ linear with slope $d\hat t^*/d\ln(1/s)$; both
  slopes are fitted (least squares) and printed.

Cells whose status is not `converged` are hatched (phase diagram) or drawn as grey crosses (line
plot) and counted in the caption; cells with no value (NaN: not applicable) are grey. Titles and
captions are written from the data.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402
from matplotlib.tri import Triangulation  # noqa: E402

from ._outputs import atomic_path  # noqa: E402
from ._plots import check_format  # noqa: E402
from ._sweep_axes import (  # noqa: E402
    LAMBDA, anisotropy_axis, axis_values, category_ticks, cell_edges, label, set_scale, value_ticks,
)
from ._sweep_view import GOOD, View, field_path, make_view  # noqa: E402

#: A positive outcome spanning more than this factor gets a logarithmic colour scale.
LOG_SPAN = 30.0


@dataclass
class SweepFigure:
    """A figure, its title and caption (written from the data) and any fitted slopes."""

    fig: Any
    title: str
    caption: list[str]
    fits: dict[str, dict[str, float]] = field(default_factory=dict)


def _what(view: View) -> str:
    parts = [f"mean over {view.n_seeds} seed{'s' if view.n_seeds != 1 else ''}"]
    if view.averaged:
        parts.append(f"averaged over {', '.join(view.averaged)}")
    if view.fixed:
        parts.append("fixed " + ", ".join(f"{k} = {v if isinstance(v, str) else format(v, 'g')}"
                                          for k, v in view.fixed.items()))
    return "; ".join(parts)


def _status_line(view: View) -> str:
    n_bad = sum(n for s, n in view.statuses.items() if s != GOOD)
    if not n_bad:
        return f"all {view.cells} cells converged"
    others = ", ".join(f"{s} {n}" for s, n in sorted(view.statuses.items()) if s != GOOD)
    return f"{n_bad} of {view.cells} cells not converged ({others}): marked"


def _compare_line(view: View) -> str | None:
    """How far the measurement is from the prediction, over the plotted points with both values."""
    pred = view.prediction
    if pred is None:
        return None
    meas, want = np.asarray(view.mean().values, float), np.asarray(view.mean(pred).values, float)
    # The predictions are statements about runs that reached their end state: compare those only.
    ok = np.isfinite(meas) & np.isfinite(want) & (want != 0) & (np.asarray(view.bad.values) == 0)
    if not ok.any():
        return f"{label(pred)}: no point with every cell converged has both a measurement and a prediction"
    rel = np.abs(meas[ok] - want[ok]) / np.abs(want[ok])
    return (f"{label(view.z)} vs {label(pred)}: relative gap median {np.median(rel):.3g}, "
            f"max {rel.max():.3g} over the {int(ok.sum())} points whose cells all converged")


def _norm(values: np.ndarray) -> Normalize:
    v = values[np.isfinite(values)]
    if v.size and v.min() > 0 and v.max() / v.min() > LOG_SPAN:
        return LogNorm(v.min(), v.max())
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)
    return Normalize(lo, hi if hi > lo else lo + 1.0)


def _lambda_border(ax: Any, view: View, which: str) -> bool:
    """The line λ = 0: no negative pairs, so no stage 2 (weight decay alone)."""
    key = view.axes[0] if which == "x" else view.axes[1]
    if field_path(view.ds, key) != LAMBDA:
        return False
    draw = ax.axvline if which == "x" else ax.axhline
    draw(0.0, color="crimson", lw=2.0, ls="-.", label="λ = 0: no negative pairs, stage 2 absent")
    (ax.set_xlim if which == "x" else ax.set_ylim)(_left_or_bottom(ax, which), None)
    axis = ax.xaxis if which == "x" else ax.yaxis
    ticks = axis.get_ticklocs()
    labels = [t.get_text() for t in axis.get_ticklabels()]
    # Explicit labels (ticks at the swept values) do not include 0 by themselves; automatic ones do.
    if axis.get_scale() != "log" and all(labels) and not np.isclose(ticks, 0.0).any():
        axis.set_ticks([0.0, *ticks], labels=["0", *labels])
    return True


def _left_or_bottom(ax: Any, which: str) -> float:
    lo, _ = ax.get_xlim() if which == "x" else ax.get_ylim()
    return min(lo, 0.0) if (ax.get_xscale() if which == "x" else ax.get_yscale()) != "log" else lo


def _grid_panel(ax: Any, view: View, data: xr.DataArray, norm: Normalize, cmap: str, overlay: bool) -> Any:
    x, y = view.axes
    xs, ys = axis_values(view.ds, x), axis_values(view.ds, y)
    set_scale(ax, "x", view.ds, x, xs)
    set_scale(ax, "y", view.ds, y, ys)
    xe, ye = cell_edges(ax, "x", xs), cell_edges(ax, "y", ys)
    value_ticks(ax, "x", xs)
    value_ticks(ax, "y", ys)
    category_ticks(ax, "x", view.ds, x)
    category_ticks(ax, "y", view.ds, y)
    anisotropy_axis(ax, "x", view.ds, x, xs)
    anisotropy_axis(ax, "y", view.ds, y, ys)
    cm = plt.get_cmap(cmap).with_extremes(bad="0.82")
    mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(np.asarray(data.values, float).T), cmap=cm, norm=norm)
    bad = np.asarray(view.bad.values)
    for i, j in zip(*np.nonzero(bad)):
        ax.add_patch(plt.Rectangle((xe[i], ye[j]), xe[i + 1] - xe[i], ye[j + 1] - ye[j], fill=False,
                                   hatch="///", edgecolor="0.25", lw=0.0, label="_bad"))
    if overlay and view.prediction is not None and len(xs) > 1 and len(ys) > 1:
        pred = np.asarray(view.mean(view.prediction).values, float).T
        if np.isfinite(pred).sum() >= 4:
            levels = _levels(norm, pred)
            cs = ax.contour(xs, ys, pred, levels=levels, colors="k", linewidths=1.3, norm=norm)
            ax.clabel(cs, fmt="%.3g", fontsize=7)
            ax.plot([], [], "k-", lw=1.3, label=f"prediction: {label(view.prediction)}")
    return mesh


def _levels(norm: Normalize, pred: np.ndarray) -> np.ndarray:
    v = pred[np.isfinite(pred)]
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return np.array([lo])
    if isinstance(norm, LogNorm) and lo > 0:
        return np.geomspace(lo, hi, 7)[1:-1]
    return np.linspace(lo, hi, 7)[1:-1]


def _triangles(ax: Any, xs: np.ndarray, ys: np.ndarray) -> Triangulation:
    """Delaunay triangles of the points as the axes show them (log axes: in log coordinates)."""
    tx = ax.xaxis.get_transform().transform(xs.reshape(-1, 1)).ravel()
    ty = ax.yaxis.get_transform().transform(ys.reshape(-1, 1)).ravel()
    return Triangulation(xs, ys, triangles=Triangulation(tx, ty).triangles)


def _sample_panel(ax: Any, view: View, data: xr.DataArray, norm: Normalize, cmap: str, overlay: bool) -> Any:
    x, y = view.axes
    xs, ys = np.asarray(view.ds[x].values, float), np.asarray(view.ds[y].values, float)
    set_scale(ax, "x", view.ds, x, xs)
    set_scale(ax, "y", view.ds, y, ys)
    vals = np.asarray(data.values, float)
    fin = np.isfinite(vals)
    cm = plt.get_cmap(cmap)
    if overlay:  # the mean is filled in between the samples; the spread is shown at the samples only
        try:  # a triangulation needs three non-collinear points with values
            levels = np.geomspace(norm.vmin, norm.vmax, 13) if isinstance(norm, LogNorm) else 12
            ax.tricontourf(_triangles(ax, xs[fin], ys[fin]), vals[fin], levels=levels, cmap=cm, norm=norm,
                           alpha=0.85)
        except (ValueError, RuntimeError):
            pass
    sc = ax.scatter(xs[fin], ys[fin], c=vals[fin], cmap=cm, norm=norm, edgecolors="k", linewidths=0.4, s=22)
    if (~fin).any():
        ax.scatter(xs[~fin], ys[~fin], c="0.7", s=22, marker="s", label="no value (NaN)")
    bad = np.asarray(view.bad.values) > 0
    if bad.any():
        ax.scatter(xs[bad], ys[bad], marker="x", c="0.2", s=40, label="not converged (≥ 1 seed)")
    if overlay and view.prediction is not None:
        pred = np.asarray(view.mean(view.prediction).values, float)
        ok = np.isfinite(pred)
        try:
            cs = ax.tricontour(_triangles(ax, xs[ok], ys[ok]), pred[ok], levels=_levels(norm, pred), colors="k",
                               linewidths=1.3)
            ax.clabel(cs, fmt="%.3g", fontsize=7)
            ax.plot([], [], "k-", lw=1.3, label=f"prediction: {label(view.prediction)}")
        except (ValueError, RuntimeError):
            pass
    return sc


def phase_diagram(view: View) -> SweepFigure:
    """Mean over seeds (left) and spread over seeds (right) over two swept fields."""
    x, y = view.axes
    mean = view.mean()
    two = view.n_seeds > 1
    fig, axs = plt.subplots(1, 2 if two else 1, figsize=(12.5 if two else 7.2, 5.4), squeeze=False)
    panel = _grid_panel if view.design == "grid" else _sample_panel
    norm = _norm(np.concatenate([np.asarray(mean.values, float).ravel()]
                                + ([np.asarray(view.mean(view.prediction).values, float).ravel()]
                                   if view.prediction else [])))
    art = panel(axs[0, 0], view, mean, norm, "viridis", overlay=True)
    fig.colorbar(art, ax=axs[0, 0], label=f"{label(view.z)} (mean over seeds)")
    axs[0, 0].set_title(f"{label(view.z)}: mean over seeds", fontsize=10)
    border = _lambda_border(axs[0, 0], view, "x") or _lambda_border(axs[0, 0], view, "y")
    if two:
        lo, hi, band = view.band()
        spread = hi - lo
        art2 = panel(axs[0, 1], view, spread, _norm(np.asarray(spread.values, float)), "magma", overlay=False)
        fig.colorbar(art2, ax=axs[0, 1], label=f"spread of {view.z} over seeds ({band})")
        axs[0, 1].set_title(f"spread over {view.n_seeds} seeds ({band} width)", fontsize=10)
    for ax in axs[0]:
        ax.set_xlabel(label(x, view.ds))
        ax.set_ylabel(label(y, view.ds))
    _legend(axs[0, 0], view)
    title = f"{label(view.z)} over {x} × {y} ({_what(view)})"
    caption = [_status_line(view)]
    if (line := _compare_line(view)) is not None:
        caption.append(line)
    if border:
        caption.append("λ = 0 (dash-dot): no negative pairs, so κ never falls (stage 2 absent)")
    return _finish(fig, title, caption)


def _legend(ax: Any, view: View) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if view.design == "grid" and np.asarray(view.bad.values).any():
        handles.append(plt.Rectangle((0, 0), 1, 1, fill=False, hatch="///", edgecolor="0.25"))
        labels.append("not converged in ≥ 1 cell")
    if view.design == "grid" and np.isnan(np.asarray(view.mean().values, float)).any():
        handles.append(plt.Rectangle((0, 0), 1, 1, color="0.82"))
        labels.append("no value (NaN: not applicable)")
    if handles:
        ax.legend(handles, labels, fontsize=7, loc="best", framealpha=0.85)


def _finish(fig: Any, title: str, caption: list[str], fits: dict | None = None) -> SweepFigure:
    width = int(fig.get_figwidth() * 17)  # characters of 8 pt text per line
    lines = [w for c in caption for w in textwrap.wrap(c, width, subsequent_indent="  ")]
    fig.suptitle("\n".join(textwrap.wrap(title, int(fig.get_figwidth() * 13))), fontsize=11)
    fig.text(0.01, 0.01, "\n".join(lines), fontsize=8, va="bottom", ha="left")
    fig.tight_layout(rect=(0, 0.03 + 0.03 * len(lines), 1, 0.94))
    return SweepFigure(fig, title, caption, fits or {})


def plot_store(ds: xr.Dataset, x: str, y: str | None, z: str, fix: list[str] | None = None,
               average: bool = False) -> SweepFigure:
    """The figure `cdyn sweep plot` writes: a phase diagram when `y` is given, a line plot otherwise."""
    from ._sweep_lines import line_plot

    view = make_view(ds, x, y, z, fix, average)
    return phase_diagram(view) if y is not None else line_plot(view)


def save_figure(sf: SweepFigure, path: str | Path, fmt: str) -> Path:
    """Write the figure in `fmt` (png, pdf, svg) all or nothing; close it."""
    check_format(fmt)
    path = Path(path)
    with atomic_path(path) as tmp:
        sf.fig.savefig(tmp, format=fmt, dpi=120)
    plt.close(sf.fig)
    return path


