"""Generated code against oracles: hand-written NumPy and SymPy evaluated entry by entry.

The hand-written right-hand sides below are the *only* hand-typed flows in the package
besides `benchmarks/`: they are oracles, typed from THEORY §3 and §8, not used by code.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from cdyn import numerics
from cdyn import theory
from cdyn.numerics._compile import _ident
from cdyn.numerics._reduced import ReducedSystem
from tests.helpers import weights
from tests.test_structured import _iso_problem
from cdyn.theory import _reduced as R

S = theory.symbols


def hand_full(W_A, W_B, Sigma_A, Sigma_B, C, lam):
    """THEORY §3, typed by hand."""
    WS_A, WS_B = W_A @ Sigma_A, W_B @ Sigma_B
    return W_B @ C.T - lam * (WS_B @ W_B.T) @ WS_A, W_A @ C - lam * (WS_A @ W_A.T) @ WS_B


def hand_structured(W_A, W_B, A, B, Sz, s_A, s_B, lam):
    """THEORY §3 with Σ_A = A Σ_z Aᵀ + σ_A² I, C = A Σ_z Bᵀ, typed by hand without d×d."""
    P_A, P_B = W_A @ A @ Sz, W_B @ B @ Sz           # m×r
    H_A = P_A @ (W_A @ A).T + s_A**2 * W_A @ W_A.T  # W_A Σ_A W_Aᵀ
    H_B = P_B @ (W_B @ B).T + s_B**2 * W_B @ W_B.T
    dA = P_B @ A.T - lam * ((H_B @ P_A) @ A.T + s_A**2 * H_B @ W_A)
    dB = P_A @ B.T - lam * ((H_A @ P_B) @ B.T + s_B**2 * H_A @ W_B)
    return dA, dB


def hand_reduced(X_A, Y_A, X_B, Y_B, S_A, S_B, Ct, s_A, s_B, lam):
    """THEORY §8 with G = Y Yᵀ, typed by hand."""
    Sb_A, Sb_B = S_A + s_A**2 * np.eye(len(S_A)), S_B + s_B**2 * np.eye(len(S_B))
    H_A = X_A @ Sb_A @ X_A.T + s_A**2 * Y_A @ Y_A.T
    H_B = X_B @ Sb_B @ X_B.T + s_B**2 * Y_B @ Y_B.T
    return (X_B @ Ct.T - lam * H_B @ X_A @ Sb_A, -lam * s_A**2 * H_B @ Y_A,
            X_A @ Ct - lam * H_A @ X_B @ Sb_B, -lam * s_B**2 * H_A @ Y_B)


@pytest.mark.parametrize("d", [16, 64, 256])
def test_compiled_full_rhs_equals_the_hand_written_oracle(d):
    p = numerics.random_problem(np.geomspace(1, 0.1, 8), np.geomspace(1, 0.2, 8), d_A=d, d_B=d, m=8,
                                noise_A=0.1, noise_B=0.2, seed=d)
    W_A, W_B = weights(p, 0.3, d)
    got = numerics.flow_function(p, ("pos", "neg"), path="full")(W_A, W_B)
    want = hand_full(W_A, W_B, p.Sigma_A, p.Sigma_B, p.C, p.lam)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-13 * np.abs(w).max())


@pytest.mark.parametrize("d", [16, 64, 256])
def test_compiled_structured_rhs_equals_the_hand_written_oracle(d):
    p = numerics.random_problem(np.geomspace(1, 0.1, 8), np.geomspace(1, 0.2, 8), d_A=d, d_B=d, m=8,
                                noise_A=0.1, noise_B=0.2, seed=d)
    W_A, W_B = weights(p, 0.3, d)
    got = numerics.flow_function(p, ("pos", "neg"), path="structured")(W_A, W_B)
    want = hand_structured(W_A, W_B, p.A, p.B, p.Sigma_z, 0.1, 0.2, p.lam)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-12 * np.abs(w).max())


def test_compiled_reduced_rhs_equals_the_hand_written_oracle():
    p = _iso_problem(8, 40, 30, 4, 3, 0.3, 0.2)
    W_A, W_B = weights(p, 0.4, 1)
    rs = ReducedSystem.build(p, ("pos", "neg"), W_A, W_B)
    f = rs.vector_field()
    got = f(0.0, rs.y0)
    sl = rs._slices()
    state = [rs.y0[a:b].reshape(sh) for a, b, sh in sl]
    U_A, U_B = rs.V_A[:, :rs.shapes["X_A"][1]], rs.V_B[:, :rs.shapes["X_B"][1]]
    T_A, T_B = U_A.T @ p.A, U_B.T @ p.B
    Sz = p.Sigma_z
    want = hand_reduced(*state, T_A @ Sz @ T_A.T, T_B @ Sz @ T_B.T, T_A @ Sz @ T_B.T, 0.3, 0.2, p.lam)
    for (a, b, _), w in zip(sl, want):
        np.testing.assert_allclose(got[a:b], w.ravel(), rtol=1e-12, atol=1e-13 * np.abs(w).max())


def _sympy_eval(expr: sp.Expr, values: dict[sp.MatrixSymbol, np.ndarray], scalars: dict) -> np.ndarray:
    """Evaluate a matrix expression by SymPy itself: explicit numeric matrices, `doit`."""
    sub = {sym: sp.ImmutableMatrix(val) for sym, val in values.items()}
    dims = {s: values[sym].shape[i] for sym in values for i, s in enumerate(sym.shape) if isinstance(s, sp.Symbol)}
    e = expr.xreplace(dims).xreplace({sp.MatrixSymbol(k.name, *v.shape): m for (k, m), v in
                                      zip(sub.items(), values.values())}).xreplace(scalars)
    return np.array(sp.Matrix(e.doit()).evalf(), dtype=float)


def test_compiled_structured_and_reduced_flows_equal_sympy_entrywise():
    p = _iso_problem(9, 4, 3, 2, 2, 0.3, 0.5)
    W_A, W_B = weights(p, 0.7, 2)
    sig_A, sig_B = theory._structured.sigma_A, theory._structured.sigma_B
    scalars = {S.lam: p.lam, S.mu: p.mu, sig_A: 0.3, sig_B: 0.5}
    sf = theory.structured_flow(("pos", "neg", "wd"), "isotropic", "isotropic")
    vals = {S.W_A: W_A, S.W_B: W_B, S.A: p.A, S.B: p.B, S.Sigma_z: p.Sigma_z}
    got = numerics.flow_function(p, ("pos", "neg", "wd"), path="structured")(W_A, W_B)
    for g, e in zip(got, (sf.dW_A, sf.dW_B)):
        np.testing.assert_allclose(g, _sympy_eval(e, {k: v for k, v in vals.items() if e.has(k)}, scalars),
                                   rtol=1e-12, atol=1e-13)
    rs = ReducedSystem.build(p, ("pos", "neg", "wd"), W_A, W_B)
    state = [rs.y0[a:b].reshape(sh) for a, b, sh in rs._slices()]
    rvals = dict(zip(R.STATE, state))
    rvals.update({R.Sb_A: rs.values[_ident(R.Sb_A.name)], R.Sb_B: rs.values[_ident(R.Sb_B.name)],
                  R.Ct: rs.values[_ident(R.Ct.name)]})
    got = rs.vector_field()(0.0, rs.y0)
    for (a, b, sh), e in zip(rs._slices(), theory.reduced_flow(("pos", "neg", "wd")).outputs().values()):
        want = _sympy_eval(e, {k: v for k, v in rvals.items() if e.has(k)}, scalars)
        np.testing.assert_allclose(got[a:b].reshape(sh), want, rtol=1e-12, atol=1e-13)


def _left_to_right_flops(expr: sp.Expr, dims: dict) -> float:
    """What lambdify's `A@B@C@...` costs: every chain multiplied left to right, nothing shared."""
    total = 0.0
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.MatMul):
            mats = node.as_coeff_matrices()[1]
            shp = [[int(sp.sympify(s).xreplace(dims)) for s in f.shape] for f in mats]
            rows = shp[0][0]
            for (_, k), (_, c) in zip(shp[:-1], shp[1:]):
                total += 2.0 * rows * k * c
    return total


def test_chain_order_and_sharing_beat_left_to_right():
    flow = theory.gradient_flow(("pos", "neg"))
    dims = {S.m: 32, S.d_A: 1024, S.d_B: 1024}
    code = numerics.compile_exprs({"a": flow.dW_A, "b": flow.dW_B}, dims, varying=("W_A", "W_B"),
                                  symmetric=S.SYMMETRIC)
    naive = _left_to_right_flops(flow.dW_A, dims) + _left_to_right_flops(flow.dW_B, dims)
    # Left to right: 6 products of m·d² (two W Σ per chain plus W C); shared: 4.
    assert code.flops < 0.7 * naive
    src = code.source
    assert src.count("in_W_A @ in_Sigma_A") == 1 and src.count("in_W_B @ in_Sigma_B") == 1
    assert "in_Sigma_A @ in_W_A.T" not in src and "in_Sigma_B @ in_W_B.T" not in src  # read as (W Σ)ᵀ


def test_constants_are_hoisted_and_scalars_scale_small_factors():
    sf = theory.structured_flow(("pos", "neg"), "isotropic", "isotropic")
    dims = {S.m: 8, S.r: 8, S.d_A: 500, S.d_B: 500}
    code = numerics.compile_exprs({"a": sf.dW_A, "b": sf.dW_B}, dims, varying=("W_A", "W_B"), symmetric=S.SYMMETRIC)
    setup, body = code.source.split("    def ", 1)
    assert "lam" in setup and "lam" not in body.split("\n", 1)[1]  # -λ, σ² computed once
    for line in body.splitlines()[1:]:
        if " * " in line and "@" not in line and line.strip().startswith("t"):
            name = line.split("=")[1].split("*")[1].strip()
            # every scaled matrix is an m×m or m×r product, never an m×d one
            assert name not in ("in_W_A", "in_W_B")
