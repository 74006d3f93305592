"""Sweep cells: outcomes against the theory (t̂*, GD at first order, SGD/CLIP), and cells that diverge or
raise are recorded with their status and reason while the sweep goes on."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from cdyn import cli, numerics
from cdyn._sweep_cell import decoupled_bases, initial_weights
from cdyn._sweep_spec import parse_sweep
from cdyn._sweep_store import open_store

DECOUPLED = textwrap.dedent("""
    [problem]
    d_A = 3
    d_B = 3
    m = 2
    spectrum_A = [2.0, 0.6]
    spectrum_B = [1.5, 0.5]
    noise_A = 0.05
    noise_B = 0.05
    shared_right = true

    [run]
    t_end = 6.0
    n_points = 61
    """)


def run(tmp_path, text: str, name: str = "s"):
    (tmp_path / f"{name}.toml").write_text(text)
    assert cli.main(["sweep", "--config", str(tmp_path / f"{name}.toml"), "--out", str(tmp_path / f"{name}.zarr"),
                     "--workers", "0"]) == 0
    return open_store(tmp_path / f"{name}.zarr")


def test_balanced_init_is_the_decoupled_one():
    spec = parse_sweep(DECOUPLED + "[sweep]\ninit = 'balanced'\n[sweep.grid]\n'init.scale' = [1e-3]\n")
    cfg = spec.cell_config(0)
    from cdyn._common import problem_from_config

    p = problem_from_config(cfg)
    d = decoupled_bases(cfg, p)
    W_A, W_B = initial_weights(cfg, p, "balanced")
    assert np.allclose(d.modes(W_A, W_B)[0], 1e-3, rtol=1e-12) and d.off_mode(W_A, W_B) < 1e-15


def test_peak_time_and_gd_against_the_theory(tmp_path):
    ds = run(tmp_path, DECOUPLED + textwrap.dedent("""
        [sweep]
        init = "balanced"
        train = "gd"
        [sweep.grid]
        "init.scale" = [1e-4, 1e-2]
        "run.eta" = [0.004, 0.002]
        """))
    assert ds.done.values.all() and set(ds.status.values.ravel()) == {"completed"}
    # t̂* within twice its own first-order error estimate (claim C6's criterion) of the measured peak
    p = numerics.random_problem([2.0, 0.6], [1.5, 0.5], d_A=3, d_B=3, m=2, noise_A=0.05, noise_B=0.05,
                                shared_right=True)
    g, alpha = np.array([1.2 * 2.5, 0.3]), (np.array([4.0, 0.36]) + 0.0025) * (np.array([2.25, 0.25]) + 0.0025)
    for s in (1e-4, 1e-2):
        pred = numerics.peak_prediction(g[0], g[1], alpha[0], alpha[1], p.lam, s**2)
        cell = ds.sel(scale=s, eta=0.002, seed=0)
        assert float(cell.t_peak_pred) == pred.t_hat
        assert abs(float(cell.t_peak) - pred.t_hat) <= 2 * abs(pred.first_order) + 1e-6 * pred.t_hat
    # the predictions the cell records are the derived ones: 2(g1 - gk), -2gk
    assert np.allclose(ds.rate1_pred.values, 2 * (g[0] - g[1])) and np.allclose(ds.rate2_pred.values, -2 * g[1])
    # GD converges to the flow at first order: halving eta halves the gap (claim C4's band)
    ratio = ds.train_gap.sel(eta=0.004) / ds.train_gap.sel(eta=0.002)
    assert np.all((ratio.values > 1.7) & (ratio.values < 2.3)), ratio.values


def test_diverged_and_raising_cells_are_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    import cdyn._sweep_run as engine

    real = engine.run_cell

    def flaky(cfg, init, train):
        if cfg["problem"]["lam"] == 2.0:
            raise FloatingPointError("injected failure\nsecond line")
        return real(cfg, init, train)

    monkeypatch.setattr(engine, "run_cell", flaky)
    ds = run(tmp_path, DECOUPLED.replace("t_end = 6.0", "t_end = 40.0") + textwrap.dedent("""
        [sweep]
        [sweep.grid]
        "problem.lam" = [1.0, 2.0]
        "run.terms" = [["pos", "neg"], ["pos"]]
        """))
    assert ds.done.values.all()
    assert list(ds.terms.values) == ['["pos", "neg"]', '["pos"]']
    one = ds.sel(lam=1.0, seed=0)
    # positive pairs alone grow without bound: diverged, with its time, and no CCA limit or stage 2 to predict
    pos = one.sel(terms='["pos"]')
    assert str(pos.status.values) == "diverged" and 0 < float(pos.t_status) < 40.0
    assert np.isfinite(float(pos.rate1_pred)) and np.isnan(float(pos.rate2_pred))
    full = one.sel(terms='["pos", "neg"]')
    assert str(full.status.values) in ("converged", "completed") and np.isfinite(float(full.rate2_pred))
    bad = ds.sel(lam=2.0, seed=0)
    assert set(bad.status.values) == {"error"}
    assert all(str(r) == "FloatingPointError: injected failure second line" for r in bad.reason.values)
    assert np.isnan(bad.kappa_final.values).all() and np.isfinite(bad.wall.values).all()


def test_sgd_and_clip_cells_report_their_gap(tmp_path):
    ds = run(tmp_path, DECOUPLED.replace("t_end = 6.0", "t_end = 3.0") + textwrap.dedent("""
        [train]
        t_end = 3.0
        eta = 0.02
        batch = 64
        n_points = 31

        [sweep]
        train = "sgd"
        [sweep.grid]
        "train.loss" = ["spectral", "clip"]
        """))
    assert ds.done.values.all() and set(ds.status.values.ravel()) <= {"completed", "converged"}
    gap = ds.train_gap.values
    assert np.all(np.isfinite(gap)) and np.all(gap > 0)
    # the spectral loss's SGD is unbiased for the flow: its gap is sampling error, well below 1 at batch 64
    assert float(ds.train_gap.sel(loss="spectral", seed=0)) < 0.5


@pytest.mark.xdist_group("numba")  # with the other numba tests: one worker compiles the kernels
def test_cells_run_their_flows_on_the_configured_backend(tmp_path, monkeypatch):
    """`[run] backend` reaches every flow a cell integrates (the key was accepted and ignored before)."""
    pytest.importorskip("numba")
    seen = []
    real = numerics.integrate

    def spy(*args, **kw):
        seen.append(kw.get("backend"))
        return real(*args, **kw)

    monkeypatch.setattr(numerics, "integrate", spy)
    text = DECOUPLED.replace("n_points = 61", 'n_points = 61\nbackend = "numba"') + textwrap.dedent("""
        [train]
        t_end = 1.0
        eta = 0.05
        batch = 16
        n_points = 11

        [sweep]
        train = "sgd"
        [sweep.grid]
        "problem.lam" = [1.0]
        """)
    ds = run(tmp_path, text, "n")
    assert seen and set(seen) == {"numba"}, seen
    seen.clear()
    ref = run(tmp_path, text.replace('backend = "numba"', 'backend = "scipy"'), "s")
    assert seen and set(seen) == {"scipy"}, seen
    # The same flow either way, up to the two integrators' global errors: each step commits a local
    # error of at most rtol = 1e-8 (integrate's default) relative, over fewer than 10³ steps here.
    assert ds.status.values.ravel().tolist() == ref.status.values.ravel().tolist()
    assert np.allclose(ds.kappa_final.values, ref.kappa_final.values, rtol=1e-5)
