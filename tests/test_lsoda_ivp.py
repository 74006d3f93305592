"""`numerics._lsoda_ivp.solve_lsoda` takes `solve_ivp(method="LSODA")`'s steps, to the bit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from cdyn.numerics._lsoda_ivp import solve_lsoda


def _stiff(t, y):
    # Robertson-like stiff kinetics plus a slow oscillator: LSODA switches between Adams and BDF.
    return np.array([-0.04 * y[0] + 1e4 * y[1] * y[2], 0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] ** 2,
                     3e7 * y[1] ** 2, y[4], -y[3]])


def _jac(t, y):
    J = np.zeros((5, 5))
    J[0] = [-0.04, 1e4 * y[2], 1e4 * y[1], 0, 0]
    J[1] = [0.04, -1e4 * y[2] - 6e7 * y[1], -1e4 * y[1], 0, 0]
    J[2] = [0, 6e7 * y[1], 0, 0, 0]
    J[3, 4], J[4, 3] = 1.0, -1.0
    return J


def _events(level: float):
    def crossing(t, y):  # the oscillator passes `level` going down: terminal
        return float(y[3] - level)

    def watch(t, y):  # non-terminal, both directions
        return float(y[4])

    crossing.terminal, crossing.direction = True, -1
    return [watch, crossing]


def _same(a, b):
    assert a.status == b.status and a.message == b.message
    assert np.array_equal(np.asarray(a.t), np.asarray(b.t)) and np.array_equal(np.asarray(a.y), np.asarray(b.y))
    assert len(a.t_events) == len(b.t_events)
    for x, y in zip(a.t_events, b.t_events):
        assert np.array_equal(x, y)
    for x, y in zip(a.y_events, b.y_events):
        assert np.array_equal(x, y)


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("jac", [None, _jac])
@pytest.mark.parametrize("level", [-0.5, -2.0])  # -2: the terminal event never fires, t_end is reached
def test_same_steps_values_events_and_dense_output(dense, jac, level):
    y0 = np.array([1.0, 0.0, 0.0, 1.0, 0.0])
    t_eval = np.linspace(0.0, 8.0, 17)
    kw = dict(t_eval=t_eval, dense_output=dense, rtol=1e-8, atol=1e-12) | ({"jac": jac} if jac else {})
    ref = solve_ivp(_stiff, (0.0, 8.0), y0, method="LSODA", events=_events(level), **kw)
    new = solve_lsoda(_stiff, (0.0, 8.0), y0, events=_events(level), **kw)
    _same(ref, new)
    assert (ref.sol is None) == (new.sol is None) == (not dense)
    if dense:
        ts = np.linspace(0.0, float(ref.t[-1]), 101)
        assert np.array_equal(ref.sol(ts), new.sol(ts))


def test_an_exception_in_the_right_hand_side_propagates():
    calls = [0]

    def f(t, y):
        calls[0] += 1
        if calls[0] > 50:
            raise ArithmeticError("stop here")
        return -y

    with pytest.raises(ArithmeticError, match="stop here"):
        solve_lsoda(f, (0.0, 1e3), np.ones(3), t_eval=np.array([0.0, 1e3]), dense_output=False, events=[],
                    rtol=1e-10, atol=1e-14)
