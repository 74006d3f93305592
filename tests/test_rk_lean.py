"""`numerics._rk_lean.solve_rk` takes `solve_ivp`'s explicit RK steps to the bit, and its lazily
rebuilt interpolants are SciPy's own."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from cdyn import numerics
from cdyn.numerics._integrate import build_system
from cdyn.numerics._rk_lean import LazySteps, solve_rk


def _field(t, y):
    # A damped nonlinear oscillator pair with a time-dependent drive: every stage sees t and y.
    return np.array([y[1], -y[0] - 0.1 * y[1] + 0.3 * np.sin(2 * t), y[3], -4 * y[2] - y[0] * y[2] ** 2])


def _events(level: float):
    def crossing(t, y):  # the first oscillator passes `level` going down: terminal
        return float(y[0] - level)

    def watch(t, y):  # non-terminal, both directions
        return float(y[2])

    crossing.terminal, crossing.direction = True, -1
    return [watch, crossing]


def _same(a, b):
    assert a.status == b.status and a.message == b.message
    assert np.array_equal(np.asarray(a.t), np.asarray(b.t)) and np.array_equal(np.asarray(a.y), np.asarray(b.y))
    for x, y in zip(a.t_events, b.t_events, strict=True):
        assert np.array_equal(x, y)
    for x, y in zip(a.y_events, b.y_events, strict=True):
        assert np.array_equal(x, y)


@pytest.mark.parametrize("method", ["DOP853", "RK45", "RK23"])
@pytest.mark.parametrize("level", [-0.9, -5.0])  # -5: the terminal event never fires, t_end is reached
def test_same_steps_values_events_and_lazy_dense_output(method, level):
    y0 = np.array([1.0, 0.0, 0.5, 0.0])
    t_eval = np.linspace(0.0, 12.0, 25)
    # RK23 (third order) takes 4507 steps at 1e-8 (each re-taken below), 955 at 1e-6.
    kw = dict(t_eval=t_eval, rtol=1e-6 if method == "RK23" else 1e-8, atol=1e-12)
    calls = [0]

    def counted(t, y):
        calls[0] += 1
        return _field(t, y)

    plain = solve_ivp(_field, (0.0, 12.0), y0, method=method, events=_events(level), dense_output=False, **kw)
    ref = solve_ivp(_field, (0.0, 12.0), y0, method=method, events=_events(level), dense_output=True, **kw)
    new = solve_rk(counted, (0.0, 12.0), y0, method=method, events=_events(level), dense_output=True, **kw)
    _same(ref, new)
    # Stepping costs what solve_ivp without dense output costs: the interpolants are not built yet
    # (DOP853's cost 3 evaluations a step; RK45/RK23's come from the step's own stages).
    assert new.nfev == plain.nfev == calls[0]
    assert new.nfev < ref.nfev if method == "DOP853" else new.nfev == ref.nfev
    assert isinstance(new.sol, LazySteps)
    assert np.array_equal(new.sol.ts, ref.sol.ts)  # the same steps, the last one cut at the event's root
    ts = np.concatenate([np.linspace(0.0, float(ref.t[-1]), 97), ref.sol.ts])  # step joins included
    assert np.array_equal(new.sol(ts), ref.sol(ts))
    for t in ts[::7]:
        assert np.array_equal(new.sol(t), ref.sol(t))
    # Rebuilt on access only: one step re-taken per piece read.
    assert calls[0] > new.nfev


def test_no_dense_output_keeps_nothing():
    y0 = np.array([1.0, 0.0, 0.5, 0.0])
    out = solve_rk(_field, (0.0, 3.0), y0, method="DOP853", t_eval=np.linspace(0, 3, 4), dense_output=False,
                   events=[], rtol=1e-8, atol=1e-12)
    ref = solve_ivp(_field, (0.0, 3.0), y0, method="DOP853", t_eval=np.linspace(0, 3, 4), events=[], rtol=1e-8,
                    atol=1e-12)
    _same(ref, out)
    assert out.sol is None


def test_integrate_dense_output_is_lazy_and_exact():
    """Through `integrate`: the grid as before, fewer evaluations, `at` equal to the eager interpolant."""
    p = numerics.random_problem([1.0, 0.5], [0.8, 0.4], d_A=5, d_B=4, m=2, noise_A=0.1, noise_B=0.1, seed=3)
    W = numerics.random_init(p, 1e-2, seed=1)
    lazy = numerics.integrate(p, *W, 40.0, method="DOP853", n_points=41)
    flat = numerics.integrate(p, *W, 40.0, method="DOP853", n_points=41, dense_output=False)
    assert np.array_equal(np.asarray(lazy.W_A), np.asarray(flat.W_A)) and lazy.nfev == flat.nfev
    assert lazy.t_steps is not None and lazy.t_steps.size > 10
    # The eager interpolants of the same run (SciPy's dense output, built at every step).
    sys = build_system(p, ("pos", "neg"), *W, "auto")
    ref = solve_ivp(sys.make_f(), (0.0, 40.0), sys.y0, method="DOP853", dense_output=True, rtol=1e-8, atol=1e-12)
    assert np.array_equal(ref.sol.ts, lazy.t_steps)
    for t in (0.3, 7.77, float(lazy.t_steps[5]), 39.9):
        a, b = sys.weights(ref.sol(t)[:, None])
        got = lazy.at(t)
        assert np.array_equal(np.asarray(got[0]), np.asarray(a[0])) and np.array_equal(np.asarray(got[1]),
                                                                                       np.asarray(b[0]))
