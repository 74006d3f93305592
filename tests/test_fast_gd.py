"""Gradient descent on the cheap forms: structured and reduced GD equal full-form GD step for step."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdyn import numerics
from cdyn import theory
from cdyn.numerics._reduced import ReducedSystem
from tests.helpers import problems, weights
from tests.test_structured import _iso_problem

ISO = [(9, 7, 3, 2, 0.2, 0.3), (12, 12, 2, 3, 0.0, 0.0), (20, 15, 4, 4, 0.7, 0.0), (6, 6, 3, 3, 0.2, 0.3)]


def _rel_gap(a: numerics.Trajectory, b: numerics.Trajectory) -> float:
    scale = max(np.abs(b.W_A).max(), np.abs(b.W_B).max())
    return max(np.abs(np.asarray(a.W_A) - b.W_A).max(), np.abs(np.asarray(a.W_B) - b.W_B).max()) / scale


@pytest.mark.parametrize("case", range(len(ISO)))
@pytest.mark.parametrize("terms", [("pos", "neg"), ("pos", "neg", "wd")])
def test_reduced_and_structured_gd_equal_full_gd(case, terms):
    """The reduced GD step is exact (the step is linear in (X, Y)): rounding-level agreement
    over 200 steps, on every snapshot, noise isotropic or zero."""
    p = _iso_problem(case, *ISO[case])
    W = weights(p, 0.3, case)
    ref = numerics.gradient_descent(p, *W, 0.02, 4.0, terms, path="full")
    for path in ("structured", "reduced"):
        g = numerics.gradient_descent(p, *W, 0.02, 4.0, terms, path=path)
        assert g.path == path and g.status == ref.status == "completed" and g.nfev == ref.nfev == 200
        np.testing.assert_array_equal(g.t, ref.t)
        assert _rel_gap(g, ref) < 1e-12


@settings(max_examples=10)
@given(problems(max_r=3, max_extra_d=4, max_m=3), st.integers(0, 99))
def test_structured_gd_equals_full_gd_thin_noise(p, seed):
    W = weights(p, 0.3, seed)
    ref = numerics.gradient_descent(p, *W, 0.05, 2.0, path="full")
    g = numerics.gradient_descent(p, *W, 0.05, 2.0, path="structured")
    assert g.status == ref.status
    if ref.status == "completed":
        assert _rel_gap(g, ref) < 1e-12


def test_reduced_gd_needs_isotropic_noise():
    p = numerics.Problem(A=np.eye(4)[:, :2], B=np.eye(4)[:, :2], A_xi=np.ones((4, 1)), m=2)
    with pytest.raises(ValueError, match="path: the reduced ODE does not apply"):
        numerics.gradient_descent(p, *weights(p, 0.1, 0), 0.1, 1.0, path="reduced")
    with pytest.raises(ValueError, match="path: unknown form"):
        numerics.gradient_descent(p, *weights(p, 0.1, 0), 0.1, 1.0, path="fast")


def test_auto_takes_the_reduced_state_at_large_d_and_keeps_it_small():
    p = numerics.random_problem((2.0, 1.0, 0.5), (1.5, 1.0, 0.6), d_A=600, d_B=500, m=3, noise_A=0.1, noise_B=0.1)
    W = numerics.random_init(p, 1e-2)
    g = numerics.gradient_descent(p, *W, 0.05, 5.0)
    assert g.path == "reduced" and g.lazy
    assert g.W_A.ys.nbytes < 8 * len(g.t) * 2 * 3 * (3 + 3) + 1  # 2m(r+q) numbers per sample
    ref = numerics.gradient_descent(p, *W, 0.05, 5.0, path="structured")
    assert _rel_gap(g, ref) < 1e-12


def test_reduced_gd_diverges_on_the_same_step_as_full_gd():
    p = _iso_problem(5, 8, 8, 2, 2, 0.2, 0.2)
    W = weights(p, 1.0, 1)
    ref = numerics.gradient_descent(p, *W, 1.5, 60.0, max_norm=1e3, path="full")
    red = numerics.gradient_descent(p, *W, 1.5, 60.0, max_norm=1e3, path="reduced")
    assert ref.status == red.status == "diverged"
    assert red.t_stop == ref.t_stop and red.nfev == ref.nfev


def test_G_form_is_not_a_gd_step():
    """Why GD steps (X, Y) and not THEORY's (X, G): G after one step is G + ηĠ + η²ẎẎᵀ."""
    p = _iso_problem(2, 10, 9, 2, 2, 0.5, 0.4)
    W = weights(p, 0.5, 4)
    rs = ReducedSystem.build(p, ("pos", "neg"), *W)
    f = rs.vector_field()
    (a0, a1, sh), = [s for s, k in zip(rs._slices(), ("X_A", "Y_A", "X_B", "Y_B")) if k == "Y_A"]
    eta = 0.3
    y1 = rs.y0 + eta * f(0.0, rs.y0)
    Y, dY, Y1 = rs.y0[a0:a1].reshape(sh), f(0.0, rs.y0)[a0:a1].reshape(sh), y1[a0:a1].reshape(sh)
    G, dG = Y @ Y.T, dY @ Y.T + Y @ dY.T
    defect = Y1 @ Y1.T - (G + eta * dG)
    np.testing.assert_allclose(defect, eta**2 * dY @ dY.T, atol=1e-14 * (1 + np.abs(G).max()))
    assert np.abs(defect).max() > 1e-6  # the η² term is really there on this instance


def test_theory_reduced_gd_step_is_one_full_gd_step():
    """`theory._reduced.reduced_gd_step`, compiled and mapped back, equals W + η·Ẇ(W) of the full form."""
    from cdyn.numerics._compile import _ident, compile_exprs
    from cdyn.theory import _reduced as R

    p = _iso_problem(7, 11, 9, 3, 2, 0.4, 0.2)
    W = weights(p, 0.6, 2)
    rs = ReducedSystem.build(p, ("pos", "neg"), *W)
    step = R.reduced_gd_step(("pos", "neg"))
    dims = {theory.symbols.m: p.m, theory.symbols.r: p.r, R.r_A: rs.shapes["X_A"][1], R.q_A: rs.shapes["Y_A"][1],
            R.r_B: rs.shapes["X_B"][1], R.q_B: rs.shapes["Y_B"][1]}
    code = compile_exprs({k.name: v for k, v in step.items()}, dims, "gd_step",
                         varying=tuple(s.name for s in R.STATE), symmetric=R.SYMMETRIC)
    eta = 0.37
    values = {**rs.values, _ident(R.eta.name): eta}
    fn = code.bind(**{k: values[k] for k in code.constants})
    sl = rs._slices()
    outs = fn(*[rs.y0[a:b].reshape(sh) for a, b, sh in sl])
    y1 = np.concatenate([o.ravel() for o in outs])
    WA1, WB1 = rs.weights(y1[:, None])
    dA, dB = numerics.flow_function(p, ("pos", "neg"), path="full")(*W)
    scale = 1 + max(np.abs(W[0]).max(), np.abs(W[1]).max())
    np.testing.assert_allclose(WA1[0], W[0] + eta * dA, atol=1e-13 * scale)
    np.testing.assert_allclose(WB1[0], W[1] + eta * dB, atol=1e-13 * scale)
