"""`cdyn sweep plot`: figures of a sweep store, from synthetic stores built here (grid and LHS designs)
and, end to end, from a tiny real sweep. Checked: the three formats, the overlays (prediction
contours/lines, the λ = 0 border, hatching of non-converged cells), the numbers in captions and fits
against an independent computation on the same data, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr
import zarr.errors  # noqa: F401
from matplotlib.contour import ContourSet

from cdyn._sweep_plot import plot_store
from cdyn._sweep_view import make_view
from cdyn.cli import main

# The synthetic stores are written with fixed-length strings, which zarr v3 warns about.
pytestmark = pytest.mark.filterwarnings("ignore::zarr.errors.UnstableSpecificationWarning")

G1 = 2.0  # the synthetic t̂* is exactly (1/G1) ln(1/s) + c: the predicted slope is 1/G1
FLOATS = ("t_status", "t_peak", "kappa_peak", "t_peak_pred", "kappa_final", "kappa_limit", "eig_ratio", "rate1",
          "rate1_pred", "rate2", "rate2_pred", "train_gap", "wall")


def grid_store(fields: dict[str, tuple[str, list[float]]], seeds: int = 3, diverged: tuple = ()) -> xr.Dataset:
    """A grid store shaped like `cdyn sweep`'s; λ = 0 cells end `completed` with no peak (no stage 2)."""
    rng = np.random.default_rng(0)
    vals = np.meshgrid(*[np.asarray(v, float) for _, v in fields.values()], np.arange(seeds), indexing="ij")
    at = dict(zip(fields, vals))
    shape = vals[0].shape
    one = np.ones(shape)
    scale, lam, noise = at.get("scale", 1e-3 * one), at.get("lam", one), at.get("noise", 0.1 * one)
    data = {k: np.full(shape, np.nan) for k in FLOATS}
    pred = np.log(1 / scale) / G1 + 0.3 * np.log(1 / np.where(lam > 0, lam, 1.0)) + 0.5
    data["t_peak_pred"] = np.where(lam > 0, pred, np.nan)
    data["t_peak"] = np.where(lam > 0, pred * (1 + 0.02 * rng.standard_normal(shape)) + 0.1, np.nan)
    data["kappa_limit"] = (1 + noise) ** 2  # stored for every cell, as the sweep core does
    data["kappa_final"] = np.where(lam > 0, (1 + noise) ** 2 * (1 + 0.01 * rng.random(shape)), 1e3 * (1 + noise))
    status = np.where(lam > 0, "converged", "completed").astype(object)
    for idx in diverged:
        status[idx] = "diverged"
    dims = [*fields, "seed"]
    coords = {k: (k, np.asarray(v, float), {"field": path}) for k, (path, v) in fields.items()}
    ds = xr.Dataset({k: (dims, v) for k, v in data.items()}, coords=coords | {"seed": np.arange(seeds)})
    ds["status"] = (dims, status.astype(str))
    ds["done"] = (dims, np.ones(shape, bool))
    ds.attrs.update(config_toml='[run]\nterms = ["pos", "neg"]\n', design="grid")
    return ds


def lhs_store(n: int = 30, seeds: int = 2, failed: tuple = ()) -> xr.Dataset:
    rng = np.random.default_rng(1)
    lam, noise, aniso = rng.uniform(0.05, 2, n), rng.uniform(0.01, 0.5, n), rng.uniform(1, 10, n)
    N = np.repeat(noise[:, None], seeds, 1)
    data = {k: np.full((n, seeds), np.nan) for k in FLOATS}
    data["kappa_limit"] = (1 + N) ** 2
    data["kappa_final"] = (1 + N) ** 2 * (1 + 0.01 * rng.random((n, seeds)))
    status = np.full((n, seeds), "converged", dtype=object)
    for idx in failed:
        status[idx] = "failed"
    ds = xr.Dataset({k: (("sample", "seed"), v) for k, v in data.items()},
                    coords={"sample": np.arange(n), "seed": np.arange(seeds),
                            "lam": ("sample", lam, {"field": "problem.lam"}),
                            "noise": ("sample", noise, {"field": "problem.noise_A"}),
                            "aniso": ("sample", aniso, {"field": "problem.spectrum_A[3]"})})
    ds["status"] = (("sample", "seed"), status.astype(str))
    ds["done"] = (("sample", "seed"), np.ones((n, seeds), bool))
    ds.attrs.update(design="lhs")
    return ds


LAM_NOISE = {"lam": ("problem.lam", [0.0, 0.01, 0.1, 1.0, 10.0]), "noise": ("problem.noise_A", [0.01, 0.1, 0.3, 1.0])}


@pytest.fixture
def grid_path(tmp_path: Path) -> Path:
    path = tmp_path / "grid.zarr"
    grid_store(LAM_NOISE, diverged=[(2, 1, 0)]).to_zarr(path, consolidated=False)
    return path


def _labels(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


MAGIC = {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<svg"}


@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
def test_cli_writes_each_format(grid_path: Path, tmp_path: Path, fmt: str, capsys) -> None:
    out = tmp_path / f"fig.{fmt}"
    assert main(["sweep", "plot", str(grid_path), "--x", "lam", "--y", "noise", "--z", "kappa_final",
                 "--format", fmt, "--out", str(out)]) == 0
    head = out.read_bytes()[:400]
    assert MAGIC[fmt] in head
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "not converged" in printed


def test_phase_diagram_overlays_and_marks(grid_path: Path) -> None:
    ds = xr.open_zarr(grid_path, consolidated=False).load()
    sf = plot_store(ds, "lam", "noise", "kappa_final")
    ax = sf.fig.axes[0]
    # The CCA limit as contour lines over the heatmap, on λ > 0 only (it is not the limit at λ = 0).
    contours = [c for c in ax.collections if isinstance(c, ContourSet)]
    assert contours and any("prediction: CCA limit" in s for s in _labels(sf.fig))
    # The border λ = 0 where stage 2 disappears.
    border = [ln for ln in ax.get_lines() if "λ = 0" in ln.get_label()]
    assert border and np.allclose(border[0].get_xdata(), 0.0)
    # One hatched rectangle per plotted cell with a non-converged run: λ = 0 column (4) + one diverged cell.
    bad = (ds["status"] != "converged").any("seed")
    hatched = [p for p in ax.patches if p.get_hatch() == "///"]
    assert len(hatched) == int(bad.sum()) == 5
    n_bad, n_all = int((ds["status"] != "converged").sum()), ds["status"].size
    assert f"{n_bad} of {n_all} cells not converged (completed 12, diverged 1)" in sf.caption[0]
    # The gap to the limit is computed over the fully converged points, from the data.
    view = make_view(ds, "lam", "noise", "kappa_final")
    ok = ~bad.values & (ds["lam"].values[:, None] > 0)
    meas = ds["kappa_final"].mean("seed").values[ok]
    lim = ds["kappa_limit"].mean("seed").values[ok]
    assert f"median {np.median(np.abs(meas - lim) / lim):.3g}" in sf.caption[1]
    assert np.isnan(view.mean("kappa_limit").sel(lam=0.0)).all()
    # Second panel: spread over the 3 seeds (min–max).
    assert "min–max" in sf.fig.axes[1].get_title() or "min–max" in sf.fig.axes[2].get_title()
    plt.close(sf.fig)


def test_line_plot_band_prediction_and_slope() -> None:
    scales = list(np.geomspace(1e-6, 1e-1, 6))
    ds = grid_store({"scale": ("init.scale", scales)}, seeds=3)
    sf = plot_store(ds, "scale", None, "t_peak")
    ax = sf.fig.axes[0]
    labels = _labels(sf.fig)
    assert any("min–max band over 3 seeds" in s for s in labels)
    pred = [ln for ln in ax.get_lines() if ln.get_label().startswith("prediction")]
    x = np.log(1 / np.asarray(scales))
    order = np.argsort(x)
    assert np.allclose(pred[0].get_xdata(), x[order])
    assert np.allclose(pred[0].get_ydata(), ds["t_peak_pred"].mean("seed").values[order])
    # Slopes against ln(1/s): the measured one equals an independent least-squares fit of every value.
    ref = np.polyfit(np.repeat(x, 3), ds["t_peak"].values.ravel(), 1)
    assert sf.fits["measured"]["slope"] == pytest.approx(ref[0], rel=1e-12)
    assert sf.fits["predicted"]["slope"] == pytest.approx(1 / G1, rel=1e-12)
    assert f"predicted {1 / G1:.4g}" in sf.caption[-1]
    assert sf.fig.axes[0].get_xlabel().startswith("ln(1/s)")
    plt.close(sf.fig)


def test_quantile_band_from_ten_seeds() -> None:
    ds = grid_store({"scale": ("init.scale", [1e-4, 1e-3, 1e-2])}, seeds=10)
    view = make_view(ds, "scale", None, "t_peak")
    lo, hi, name = view.band()
    assert name == "10–90% quantile"
    assert np.allclose(lo, ds["t_peak"].quantile(0.1, "seed").values)
    assert np.allclose(hi, ds["t_peak"].quantile(0.9, "seed").values)
    sf = plot_store(ds, "scale", None, "t_peak")
    assert any("10–90% quantile band over 10 seeds" in s for s in _labels(sf.fig))
    plt.close(sf.fig)


def test_fix_and_average_select_the_right_cells(grid_path: Path) -> None:
    ds = xr.open_zarr(grid_path, consolidated=False).load()
    fixed = make_view(ds, "lam", None, "kappa_final", ["noise=0.3"])
    assert np.allclose(fixed.mean().values, ds["kappa_final"].sel(noise=0.3).mean("seed").values)
    avg = make_view(ds, "lam", None, "kappa_final", average=True)
    assert np.allclose(avg.mean().values, ds["kappa_final"].mean(["noise", "seed"]).values)
    assert avg.averaged == ["noise"]
    sf = plot_store(ds, "lam", None, "kappa_final", ["noise=0.3"])
    assert "fixed noise = 0.3" in sf.title and "mean over 3 seeds" in sf.title
    plt.close(sf.fig)


def test_lhs_design_tricontour_and_marks() -> None:
    ds = lhs_store(failed=[(3, 0), (7, 1)])
    sf = plot_store(ds, "lam", "noise", "kappa_final", average=True)
    ax = sf.fig.axes[0]
    assert any(isinstance(c, ContourSet) for c in ax.collections)  # filled mean + the limit's lines
    assert any("prediction: CCA limit" in s for s in _labels(sf.fig))
    assert "2 of 60 cells not converged (failed 2)" in sf.caption[0]
    assert "averaged over aniso" in sf.title
    plt.close(sf.fig)


def test_single_seed_has_no_spread_panel() -> None:
    ds = grid_store(LAM_NOISE, seeds=1)
    sf = plot_store(ds, "lam", "noise", "t_peak")
    assert not any("spread" in ax.get_title() for ax in sf.fig.axes)
    plt.close(sf.fig)


@pytest.mark.parametrize("args, message", [
    (["--x", "lam", "--z", "kappa_fnal"], "error: z: unknown outcome 'kappa_fnal'"),
    (["--x", "lm", "--z", "kappa_final"], "error: x: 'lm' is not a swept field"),
    (["--x", "lam", "--y", "seed", "--z", "t_peak"], "error: y: the seed dimension is averaged"),
    (["--x", "lam", "--y", "lam"], "error: y: the same field as --x"),
    (["--x", "lam", "--z", "status"], "error: z: 'status' is not a numeric outcome"),
    (["--x", "lam", "--z", "t_peak"], "error: fix: noise takes 0.01, 0.1, 0.3, 1; fix it"),
    (["--x", "lam", "--fix", "noise=0.2"], "error: fix: noise=0.2 is not a value of the sweep"),
    (["--x", "lam", "--fix", "noise=__import__('os')"], "error: fix: noise: expected a number"),
    (["--x", "lam", "--fix", "nois=0.1"], "error: fix: 'nois' is not a swept field"),
    (["--x", "lam", "--fix", "lam=0.1"], "error: fix: 'lam' is plotted on an axis"),
    (["--x", "lam", "--fix", "noise"], "error: fix: expected FIELD=VALUE"),
    (["--x", "lam", "--average", "--format", "jpg"], "error: format: expected one of png, pdf, svg"),
])
def test_errors_name_the_field(grid_path: Path, args: list[str], message: str, capsys) -> None:
    assert main(["sweep", "plot", str(grid_path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_text_field_is_fixed_by_text_or_plotted_as_categories() -> None:
    """A list field (stored as JSON text, e.g. run.terms) can be held at a value, or put on an axis."""
    doubled = grid_store(LAM_NOISE)
    for k in FLOATS:
        doubled[k] = 2 * doubled[k]
    ds = xr.concat([grid_store(LAM_NOISE), doubled], dim="terms")
    ds = ds.assign_coords(terms=("terms", np.array(['["pos", "neg"]', '["pos", "wd"]'], dtype=object),
                                 {"field": "run.terms"}))
    view = make_view(ds, "lam", "noise", "kappa_final", ['terms=["pos", "wd"]'])
    assert np.allclose(view.mean().values, (2 * ds["kappa_final"].isel(terms=0)).mean("seed").values)
    sf = plot_store(ds, "lam", "noise", "kappa_final", ['terms=["pos", "wd"]'])
    assert 'fixed terms = ["pos", "wd"]' in sf.title
    plt.close(sf.fig)
    # On a grid a text field is an axis of categories: positions 0, 1, … labelled by its values.
    sf = plot_store(ds, "terms", None, "kappa_final", ["noise=0.1", "lam=1"])
    ax = sf.fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ['["pos", "neg"]', '["pos", "wd"]']
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == [0.0, 1.0] and line.get_linestyle() == "None"  # no line between categories
    means = ds["kappa_final"].sel(noise=0.1, lam=1.0).mean("seed").values
    assert np.allclose(line.get_ydata(), means) and means[1] == 2 * means[0]
    plt.close(sf.fig)
    sf = plot_store(ds, "lam", "terms", "kappa_final", ["noise=0.1"])
    assert [t.get_text() for t in sf.fig.axes[0].get_yticklabels()] == ['["pos", "neg"]', '["pos", "wd"]']
    plt.close(sf.fig)
    with pytest.raises(ValueError, match=r"^fix: terms=\[\] is not a value of the sweep; terms takes "):
        make_view(ds, "lam", "noise", "kappa_final", ["terms=[]"])


def test_missing_store_is_named(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.zarr"
    assert main(["sweep", "plot", str(missing), "--x", "lam"]) == 2
    assert capsys.readouterr().err.strip() == f"error: store: no such sweep store {str(missing)!r}"


TINY = """
[problem]
d_A = 4
d_B = 4
m = 4
spectrum_A = [2.0, 1.2, 0.7, 0.4]
spectrum_B = [1.8, 1.1, 0.75, 0.45]
noise_A = 0.05
noise_B = 0.05
shared_right = true

[init]
scale = 1e-3

[run]
t_end = 200.0

[sweep]
design = "grid"
seeds = 1
init = "balanced"

[sweep.grid]
"init.scale" = [1e-5, 1e-4, 1e-3]
"""


def test_end_to_end_tiny_sweep_then_plot(tmp_path: Path, capsys) -> None:
    """A real sweep (serial, 3 cells), then the line plot: the slopes printed are those of the stored
    values; the predicted one is 1/g₁ and the measured one agrees with it within the theory's bounds."""
    from cdyn import numerics
    from cdyn._common import problem_from_config
    from cdyn._sweep_cell import decoupled_bases
    from cdyn._sweep_spec import parse_sweep

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    store = tmp_path / "tiny.zarr"
    assert main(["sweep", "--config", str(cfg), "--out", str(store), "--workers", "0"]) == 0
    fig = tmp_path / "t.png"
    assert main(["sweep", "plot", str(store), "--x", "scale", "--z", "t_peak", "--out", str(fig)]) == 0
    assert fig.read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out.split("wrote " + str(fig))[1]
    ds = xr.open_zarr(store, consolidated=False).load()
    assert (ds["status"].values.astype(object) == "converged").all()
    s = ds["scale"].values
    x = np.log(1 / s)
    fm = np.polyfit(np.repeat(x, ds.sizes["seed"]), ds["t_peak"].values.ravel(), 1)[0]
    fp = np.polyfit(x, ds["t_peak_pred"].mean("seed").values, 1)[0]
    assert f"slope (measured): {fm:.6g}" in printed and f"slope (predicted): {fp:.6g}" in printed
    # THEORY §5, X₀ = s²: t̂* = ln(1/s)/g₁ + ln(g₁ − λα₁s²)/(2g₁) + const, so its slope against ln(1/s)
    # lies in [1/g₁, 1/g₁ + λα₁s²/(g₁(g₁ − λα₁s²))] at the largest s (a least-squares slope is a
    # weighted mean of secant slopes).
    c = parse_sweep(TINY).cell_config(0)
    p = problem_from_config(c)
    d = decoupled_bases(c, p)
    g1, gk, a1, ak = d.g.max(), d.g.min(), d.alpha[np.argmax(d.g)], d.alpha[np.argmin(d.g)]
    lam, smax = p.lam, s.max()
    assert 0 <= fp - 1 / g1 <= lam * a1 * smax**2 / (g1 * (g1 - lam * a1 * smax**2)) + 1e-12
    # Measured t* against t̂*: the neglected first-order term, plus where the solver can put a maximum
    # of log κ (an error e in log κ moves it by sqrt(2e/|d² log κ/dt²|); e = 100 × the flow's rtol 1e-8).
    bound = []
    for si in s:
        pr = numerics.peak_prediction(g1, gk, a1, ak, lam, si**2)
        bound.append(2 * abs(pr.first_order) + np.sqrt(2 * 1e-6 / pr.curvature))
        assert ds["t_peak_pred"].sel(scale=si).values == pytest.approx(pr.t_hat, rel=1e-12)
    gap = np.abs(ds["t_peak"] - ds["t_peak_pred"]).max("seed").values
    assert (gap <= np.asarray(bound)).all()
    xc = x - x.mean()
    assert abs(fm - fp) <= max(bound) * np.abs(xc).sum() / (xc**2).sum()
