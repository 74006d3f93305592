"""The code generator agrees with the SymPy expression evaluated entry by entry."""

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


def _entrywise(expr, p: numerics.Problem, W_A, W_B):
    """Evaluate `expr` by explicit expansion + numeric substitution (no code generation)."""
    dims = p.dims
    ex = theory.explicit(expr, dims)
    vals = {"W_A": W_A, "W_B": W_B, "Sigma_A": p.Sigma_A, "Sigma_B": p.Sigma_B, "C": p.C}
    sub = {}
    for name, M in vals.items():
        E = theory.entries(getattr(S, name), *M.shape)
        sub.update({E[i, j]: sp.Float(M[i, j]) for i, j in np.ndindex(*M.shape)})
    sub.update({S.lam: sp.Float(p.lam), S.mu: sp.Float(p.mu)})
    # xreplace, not subs: the keys are plain symbols, so the exact-node replacement is the same
    # substitution (sp.Float of a float is exact) without subs's pattern matching, 5x faster here.
    if isinstance(ex, sp.MatrixBase):
        return np.array(ex.xreplace(sub).evalf(), dtype=float)
    return float(ex.xreplace(sub))


@settings(max_examples=8)
@given(problems(max_r=2, max_extra_d=1, max_m=2), st.sampled_from([("pos", "neg"), ("pos", "neg", "wd")]))
def test_compiled_flow_and_loss_match_entrywise_evaluation(p, terms):
    flow = theory.gradient_flow(terms)
    fn = numerics.flow_function(p, terms)
    W_A, W_B = weights(p, 0.7, 1)
    dA, dB = fn(W_A, W_B)
    np.testing.assert_allclose(dA, _entrywise(flow.dW_A, p, W_A, W_B), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dB, _entrywise(flow.dW_B, p, W_A, W_B), rtol=1e-10, atol=1e-12)
    assert np.isclose(fn.loss(W_A, W_B), _entrywise(flow.loss, p, W_A, W_B), rtol=1e-10, atol=1e-12)


def test_generated_code_reuses_shared_products():
    """W_A Σ_A and W_B Σ_B appear in both equations; each is computed once."""
    flow = theory.gradient_flow(("pos", "neg"))
    code = numerics.compile_exprs({"dW_A": flow.dW_A, "dW_B": flow.dW_B}, {S.m: 4, S.d_A: 50, S.d_B: 40})
    assert code.source.count("in_W_A @ in_Sigma_A") == 1
    assert code.source.count("in_W_B @ in_Sigma_B") == 1
    assert "in_Sigma_A @ in_W_A.T" not in code.source  # would be a second, transposed copy


def test_unknown_node_is_a_clear_error():
    X = sp.MatrixSymbol("X", 2, 2)
    try:
        numerics.compile_exprs({"y": sp.HadamardProduct(X, X)}, {})
    except TypeError as err:
        assert "HadamardProduct" in str(err)
    else:
        raise AssertionError("expected TypeError")


def test_inverse_power_det_and_functions_compile_to_numpy():
    X, Y = sp.MatrixSymbol("X", 3, 3), sp.MatrixSymbol("Y", 3, 3)
    code = numerics.compile_exprs({
        "inv": X.I * Y, "pow": X**3, "negpow": X**-2,
        "s": sp.log(sp.det(X)) + sp.exp(sp.Trace(Y) / 10) + sp.Trace(X * Y) ** sp.Rational(3, 2) + sp.det(Y),
    }, {})
    rng = np.random.default_rng(0)
    Xv = rng.standard_normal((3, 3)) + 4 * np.eye(3)  # det > 0: log det is real
    Yv = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    inv, pow3, negpow, s = code(X=Xv, Y=Yv)
    assert np.allclose(inv, np.linalg.solve(Xv, Yv), rtol=1e-12, atol=1e-12)
    assert np.allclose(pow3, Xv @ Xv @ Xv, rtol=1e-12)
    assert np.allclose(negpow, np.linalg.inv(Xv @ Xv), rtol=1e-10)
    expected = (np.log(np.linalg.det(Xv)) + np.exp(np.trace(Yv) / 10) + np.trace(Xv @ Yv) ** 1.5
                + np.linalg.det(Yv))
    assert abs(s - expected) <= 1e-12 * abs(expected)


def test_log_det_of_a_negative_determinant_is_nan_not_a_crash():
    X = sp.MatrixSymbol("X", 2, 2)
    (v,) = numerics.compile_exprs({"s": sp.log(sp.det(X))}, {})(X=np.diag([1.0, -1.0]))
    assert np.isnan(v)


def test_input_names_cannot_clash_or_shadow_the_generated_code():
    X = sp.MatrixSymbol("X", 2, 2)
    with pytest.raises(ValueError, match="'a b' and 'a_b'|'a_b' and 'a b'"):
        numerics.compile_exprs({"y": sp.Symbol("a b") * sp.Trace(X) + sp.Symbol("a_b") * sp.Trace(X * X)}, {})
    names = ("np", "t0", "1x", "_logdet", "in_X")
    expr = sum((i + 1) * sp.Symbol(n) * sp.Trace(X) ** (i + 1) for i, n in enumerate(names))
    code = numerics.compile_exprs({"y": expr}, {})
    Xv = np.array([[2.0, 1.0], [0.5, 1.0]])
    values = {"np": 0.3, "t0": -1.2, "1x": 2.5, "logdet": 0.7, "in_X": -0.4}
    (y,) = code(X=Xv, **values)
    tr = np.trace(Xv)
    expected = sum((i + 1) * v * tr ** (i + 1) for i, v in enumerate(values.values()))
    assert abs(y - expected) <= 1e-12 * abs(expected)
