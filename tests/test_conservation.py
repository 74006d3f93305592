"""C3: Q = W_A W_Aᵀ − W_B W_Bᵀ is conserved by the flow; GD drifts by O(η)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from cdyn import numerics
from cdyn import theory
from tests.helpers import problems, weights

S = theory.symbols


@pytest.mark.parametrize("terms", [("pos",), ("neg",), ("pos", "neg")])
@pytest.mark.parametrize("dims", [(1, 2, 1), (2, 2, 3), (3, 2, 2)])
def test_dQdt_is_zero_symbolically(terms, dims):
    m, d_A, d_B = dims
    dQ = theory.explicit(theory.dQ_dt(theory.gradient_flow(terms)), {S.m: m, S.d_A: d_A, S.d_B: d_B})
    dQ = dQ if isinstance(dQ, sp.MatrixBase) else sp.Matrix([[dQ]])
    assert dQ.shape == (m, m) and all(sp.expand(e) == 0 for e in dQ)


def test_weight_decay_breaks_conservation():
    """wd is not a function of W_Aᵀ W_B alone, so Q must *not* be conserved (the check can fail)."""
    dQ = theory.explicit(theory.dQ_dt(theory.gradient_flow(("pos", "wd"))), {S.m: 1, S.d_A: 1, S.d_B: 1})
    assert sp.expand(dQ) != 0


def _q_drift(traj) -> float:
    Q0 = numerics.conserved_Q(traj.W_A[0], traj.W_B[0])
    return max(float(np.linalg.norm(numerics.conserved_Q(a, b) - Q0)) for a, b in zip(traj.W_A, traj.W_B))


@settings(max_examples=10)
@given(problems(), st.integers(0, 2**16))
def test_flow_conserves_Q_to_solver_tolerance(p, seed):
    """The drift is solver error: it must shrink with rtol (so the bound is not vacuous)."""
    W_A, W_B = weights(p, 0.5, seed)
    scale = []
    drifts = []
    for rtol in (1e-6, 1e-10):
        tr = numerics.integrate(p, W_A, W_B, 3.0, method="DOP853", rtol=rtol, atol=rtol * 1e-3)
        assert tr.status == "completed"
        scale.append(max(np.sum(a * a) + np.sum(b * b) for a, b in zip(tr.W_A, tr.W_B)))
        drifts.append(_q_drift(tr))
    # Q is quadratic in W: a relative state error rtol gives |ΔQ| ≲ 2 rtol |W|² per accepted step.
    assert drifts[1] <= 1e3 * 1e-10 * max(scale[1], 1.0)
    assert drifts[1] <= drifts[0] or drifts[0] < 1e-13


@settings(max_examples=5)
@given(problems(), st.integers(0, 2**16))
def test_gd_step_changes_Q_by_exactly_eta_squared_term(p, seed):
    """Q_{k+1} − Q_k = η² (Ġ_A Ġ_Aᵀ − Ġ_B Ġ_Bᵀ): the first-order terms cancel exactly."""
    fn = numerics.flow_function(p, ("pos", "neg"))
    W_A, W_B = weights(p, 0.5, seed)
    eta = 0.05
    dA, dB = fn(W_A, W_B)
    dQ = numerics.conserved_Q(W_A + eta * dA, W_B + eta * dB) - numerics.conserved_Q(W_A, W_B)
    np.testing.assert_allclose(dQ, eta**2 * (dA @ dA.T - dB @ dB.T), atol=1e-13 * (1 + np.abs(dQ).max()))


@settings(max_examples=6)
@given(problems(), st.integers(0, 2**16))
def test_gd_drift_over_horizon_is_first_order(p, seed):
    """Summing the exact step identity: |Q(T) − Q(0)| ≤ η ∫₀ᵀ ‖∇L‖² dt, and it halves with η."""
    W_A, W_B = weights(p, 0.5, seed)
    T = 2.0
    ref = numerics.integrate(p, W_A, W_B, T, rtol=1e-10, atol=1e-13)
    grad2 = numerics.series(p, ref)["grad_norm"] ** 2
    integral = float(np.sum((grad2[1:] + grad2[:-1]) / 2 * np.diff(ref.t)))
    drifts = []
    for eta in (0.02, 0.01):
        gd = numerics.gradient_descent(p, W_A, W_B, eta, T)
        drifts.append(float(np.linalg.norm(numerics.conserved_Q(gd.W_A[-1], gd.W_B[-1])
                                           - numerics.conserved_Q(W_A, W_B))))
        # 10% slack for the trapezoid estimate of the integral and the O(η) path difference.
        assert drifts[-1] <= 1.1 * eta * integral + 1e-14
    if drifts[1] > 1e-12:
        assert 1.6 <= drifts[0] / drifts[1] <= 2.4
