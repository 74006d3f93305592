"""Any smooth scalar built from traces: derived gradients against two independent oracles.

A Hypothesis grammar (`tests/grammar.py`) draws losses with powers and sums inside traces,
products and powers of traces, inverses, determinants, Frobenius norms and smooth
functions. Each is registered (nothing of the grammar may be refused), then

* the derived gradient is compared with **entry-wise `sympy.diff`** of the loss written
  out in explicit 2×2 / 2×3 matrices (SymPy's scalar calculus, not our matrix calculus),
  both evaluated by SymPy's own numeric matrix arithmetic (not our code generator);
* the compiled gradient is compared with **central differences** of the compiled loss,
  whose value is first checked against SymPy's numeric evaluation of the expression.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings

from cdyn import numerics
from cdyn import theory
from tests.grammar import P, R, losses, nu
from tests.helpers import central_difference, rel_err

S = theory.symbols
DIMS = {S.m: 2, S.d_A: 2, S.d_B: 2, S.r: 2, S.k_A: 0, S.k_B: 0}


def _problem() -> numerics.Problem:
    rng = np.random.default_rng(3)
    # Well-conditioned data, so inverses of P = W_A Σ_A W_Aᵀ stay at unit scale.
    A = numerics.random_orthonormal(rng, 2, 2) @ np.diag([1.2, 0.8])
    B = numerics.random_orthonormal(rng, 2, 2) @ np.diag([1.1, 0.7])
    return numerics.Problem(A=A, B=B, A_xi=0.3 * np.eye(2), B_xi=0.3 * np.eye(2), m=2, lam=1.0,
                            params={"nu": 0.7})


PROBLEM = _problem()
W_A0 = 0.6 * np.random.default_rng(4).standard_normal((2, 2))
W_B0 = 0.6 * np.random.default_rng(5).standard_normal((2, 2))


def _concrete(expr: sp.Basic, values: dict) -> sp.Basic:
    """Every matrix symbol replaced by an explicit SymPy matrix, dimensions by numbers."""
    e = expr.xreplace(DIMS)
    sub = {sp.MatrixSymbol(k.name, *(int(sp.sympify(s).xreplace(DIMS)) for s in k.shape)): sp.ImmutableMatrix(v)
           for k, v in values.items()}
    e = e.xreplace(sub).xreplace({nu: sp.Float(0.7, 20)})
    e = e.replace(lambda x: isinstance(x, sp.Identity), lambda x: sp.ImmutableMatrix(sp.eye(int(x.shape[0]))))
    # Inverses of explicit matrices by the adjugate (SymPy's method="ADJ"), not the default Gaussian
    # elimination, which simplifies every pivot: 10× slower on 2×2 matrices whose entries hold t.
    e = e.replace(lambda x: isinstance(x, sp.Inverse),
                  lambda x: sp.ImmutableMatrix(sp.Matrix(x.arg.doit().doit()).inv(method="ADJ")))
    return e.doit().doit()


def _data_values() -> dict:
    p = PROBLEM
    return {S.Sigma_A: sp.Matrix(p.Sigma_A), S.Sigma_B: sp.Matrix(p.Sigma_B), S.C: sp.Matrix(p.C)}


def _register(expr: sp.Expr) -> None:
    theory.register_term("grammar_term", expr, replace=True)


def _value(x) -> float | np.ndarray:
    if isinstance(x, sp.ZeroMatrix):
        return np.zeros(tuple(int(n) for n in x.shape))
    if isinstance(x, sp.MatrixBase):
        return np.array(x.evalf(20).tolist(), dtype=float)
    return float(sp.sympify(x).evalf(20))


@settings(max_examples=3)
@given(losses())
def test_gradient_equals_entrywise_sympy_diff(expr):
    _register(expr)  # a refusal fails the test: the grammar is all supported constructs
    data = _data_values()
    t = sp.Symbol("t")
    for W, W0 in ((S.W_A, W_A0), (S.W_B, W_B0)):
        # ∂L/∂W_ij = d/dt L(W + t E_ij) at t = 0: SymPy's scalar diff, entry by entry, in explicit matrices.
        oracle = np.zeros(W0.shape)
        for i, j in np.ndindex(*W0.shape):
            moved = sp.Matrix(W0)
            moved[i, j] += t
            point = {S.W_A: sp.Matrix(W_A0), S.W_B: sp.Matrix(W_B0), W: moved}
            L_t = _concrete(expr, {**data, **point})
            oracle[i, j] = float(sp.diff(L_t, t).doit().xreplace({t: 0}).evalf(20))
        derived = _value(_concrete(theory.gradient(expr, W), {**data, S.W_A: sp.Matrix(W_A0), S.W_B: sp.Matrix(W_B0)}))
        # Both sides are exact expressions evaluated at 20 digits: only their roundoff differs.
        assert np.linalg.norm(derived - oracle) <= 1e-12 * max(1.0, np.linalg.norm(oracle)), (expr, W)


@settings(max_examples=20)
@given(losses())
def test_compiled_gradient_matches_central_differences(expr):
    _register(expr)
    fn = numerics.flow_function(PROBLEM, ("grammar_term",))
    independent = _value(_concrete(expr, {**_data_values(), S.W_A: sp.Matrix(W_A0), S.W_B: sp.Matrix(W_B0)}))
    # The compiled loss (the finite-difference oracle's input) against SymPy's own evaluation;
    # float64 evaluation of a handful of products and a log/inverse: tens of ulps.
    assert abs(fn.loss(W_A0, W_B0) - independent) <= 1e-12 * max(1.0, abs(independent))
    dA, dB = fn(W_A0, W_B0)
    # Central differences with h = 1e-5 on unit-scale W: truncation h²/6·|f'''| and rounding
    # ε|f|/h are both ~1e-10 relative; a wrong gradient (a lost term or sign) is O(1) off.
    assert rel_err(-dA, central_difference(lambda X: fn.loss(X, W_B0), W_A0, 1e-5)) < 1e-6, expr
    assert rel_err(-dB, central_difference(lambda X: fn.loss(W_A0, X), W_B0, 1e-5)) < 1e-6, expr


def test_the_inverse_gradient_has_the_right_sign():
    # SymPy's own derivative gave +2 P⁻² W_A Σ_A for d tr(P⁻¹)/dW_A; the truth is −2 P⁻² W_A Σ_A.
    g = theory.gradient(sp.Trace(P.I), S.W_A)
    data = _data_values()
    vals = {**data, S.W_A: sp.Matrix(W_A0), S.W_B: sp.Matrix(W_B0)}
    Pv = _value(_concrete(P, vals))
    expected = -2 * np.linalg.matrix_power(np.linalg.inv(Pv), 2) @ W_A0 @ PROBLEM.Sigma_A
    assert rel_err(_value(_concrete(g, vals)), expected) < 1e-12


@pytest.mark.parametrize("expr, construct", [
    (sp.Trace(P ** sp.Rational(1, 2)), "matrix power"),
    (sp.Abs(sp.Trace(P)), "Abs"),
    (S.W_A[0, 0] * sp.Trace(R), "matrix entry"),
    (sp.Trace(sp.HadamardProduct(P, R)), "HadamardProduct"),
    (sp.Function("f")(sp.Trace(P)), "f("),
    (sp.Trace(P) ** sp.Trace(R), "W-dependent exponent"),
])
def test_unsupported_constructs_are_refused_at_registration_by_name(expr, construct):
    with pytest.raises(theory.UnsupportedTerm) as err:
        theory.register_term("bad_term", expr)
    msg = str(err.value)
    assert "'bad_term'" in msg and construct in msg and ";" in msg  # the name, the construct, a way out
    assert "bad_term" not in theory.available_terms()


def test_a_matrix_valued_loss_is_refused():
    with pytest.raises(TypeError, match="Trace"):
        theory.register_term("bad_term", P)


@pytest.mark.parametrize("weight", ["__import__('os').system('true')", None, [1.0], sp.Identity(2), True])
def test_weights_are_never_parsed_and_must_be_scalars(weight):
    with pytest.raises((TypeError, ValueError), match="weight"):
        theory.register_term("bad_term", sp.Trace(P), weight=weight)


def test_a_non_polynomial_term_runs_on_every_form_that_applies():
    I2 = sp.Identity(S.m)
    theory.register_term("grammar_term", theory.frobenius_sq(P - R) / 4 - sp.log(sp.det(P + I2)), replace=True)
    terms = ("pos", "grammar_term")
    p = numerics.default_problem()
    W_A, W_B = numerics.random_init(p, 0.3, 2)
    full = numerics.flow_function(p, terms, path="full")(W_A, W_B)
    structured = numerics.flow_function(p, terms, path="structured")(W_A, W_B)
    for a, b in zip(full, structured):  # the same vector field, factored differently: roundoff only
        assert rel_err(b, a) < 1e-12
    flow = theory.gradient_flow(terms)
    with pytest.raises(theory.NotPolynomial, match="inverse|polynomial"):
        theory.jacobian({"dW_A": flow.dW_A, "dW_B": flow.dW_B}, (S.W_A, S.W_B), S.SYMMETRIC)
    with pytest.raises(ValueError, match="reduced ODE does not apply"):
        numerics.integrate(p, W_A, W_B, 1.0, terms, path="reduced")
    tr = numerics.integrate(p, W_A, W_B, 1.0, terms, method="LSODA", jac=True)
    assert tr.status == "completed" and tr.method == "LSODA"  # no analytic Jacobian: LSODA estimates it
