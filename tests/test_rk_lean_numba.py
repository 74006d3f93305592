"""The numba backend's lazy dense output: no evaluations while stepping, the compiled loop's own
interpolant when read."""

from __future__ import annotations

import numpy as np
import pytest

from cdyn import numerics

pytest.importorskip("numba")
pytestmark = pytest.mark.xdist_group("numba")  # one worker compiles the DOP853 loop (see test_backends)


def test_dense_output_costs_no_evaluations_and_is_the_loops_interpolant():
    p = numerics.random_problem((1.0, 0.6, 0.35), (0.9, 0.55, 0.4), d_A=6, d_B=5, m=2, noise_A=0.1, noise_B=0.1,
                                seed=3)
    W = numerics.random_init(p, 1e-2, seed=1)
    kw = dict(method="DOP853", backend="numba", path="full", n_points=61)
    dense = numerics.integrate(p, *W, 60.0, **kw)
    flat = numerics.integrate(p, *W, 60.0, dense_output=False, **kw)
    assert dense.nfev == flat.nfev and np.array_equal(np.asarray(dense.W_A), np.asarray(flat.W_A))
    assert dense.t_steps is not None and flat.t_steps is None and dense.t_steps.size > 40
    # The grid values come from the interpolants the compiled loop builds as it steps (eagerly, for the
    # steps holding a grid point); `at` rebuilds a step's rows by taking the step again (`retake`). Same
    # arithmetic, so the same bits: a wrong stage, coefficient or step size would show here.
    inside = [k for k, t in enumerate(dense.t) if 0 < t < dense.t_stop]
    assert len(inside) > 50
    for k in inside:
        a, b = dense.at(float(dense.t[k]))
        assert np.array_equal(a, np.asarray(dense.W_A[k])) and np.array_equal(b, np.asarray(dense.W_B[k]))
