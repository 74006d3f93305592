"""The analytic Jacobian (derived as a linear operator in `theory`) and the stiff solvers using it."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from cdyn import numerics
from cdyn import theory
from cdyn.numerics._compile import _ident
from cdyn.numerics._integrate import build_system
from cdyn.numerics._jacobian import DenseJacobian
from tests.helpers import weights
from tests.test_structured import _iso_problem

S = theory.symbols


def _fd_jacobian(f, y: np.ndarray) -> np.ndarray:
    h = 1e-6 * max(1.0, float(np.abs(y).max()))
    cols = [(f(0.0, y + h * e) - f(0.0, y - h * e)) / (2 * h) for e in np.eye(y.size)]
    return np.stack(cols, axis=1)


def _thin_problem(seed: int) -> numerics.Problem:
    rng = np.random.default_rng(seed)
    p = _iso_problem(seed, 6, 5, 3, 2, 0.0, 0.0)
    return p.replace(A_xi=0.3 * rng.standard_normal((6, 2)), B_xi=0.3 * rng.standard_normal((5, 1)), mu=0.2)


@pytest.mark.parametrize("path, noise", [("full", "isotropic"), ("structured", "isotropic"), ("reduced", "isotropic"),
                                         ("full", "thin"), ("structured", "thin")])
@pytest.mark.parametrize("terms", [("pos", "neg"), ("pos", "neg", "wd"), ("neg",)])
def test_jacobian_matches_central_differences(path, terms, noise):
    p = _iso_problem(11, 7, 6, 3, 2, 0.3, 0.2) if noise == "isotropic" else _thin_problem(12)
    W_A, W_B = weights(p, 0.6, 5)
    system = build_system(p, terms, W_A, W_B, path)
    J = system.make_jac()(0.0, system.y0)
    J_fd = _fd_jacobian(system.make_f(), system.y0)
    # Central differences of a cubic polynomial: error O(h²·|F'''|) ≈ 1e-12 relative.
    assert np.abs(J - J_fd).max() <= 1e-6 * max(1.0, np.abs(J_fd).max())


def test_operator_and_assembled_matrix_agree():
    """J·vec(V) from the dense matrix equals the directional derivative J[V] derived in SymPy."""
    p = _iso_problem(2, 6, 5, 2, 3, 0.2, 0.4)
    flow = theory.gradient_flow(("pos", "neg", "wd"))
    outs = {"dW_A": flow.dW_A, "dW_B": flow.dW_B}
    jac = theory.jacobian(outs, (S.W_A, S.W_B), S.SYMMETRIC)
    W_A, W_B = weights(p, 0.5, 1)
    V_A, V_B = weights(p, 1.0, 2)
    dA, dB = (_ident(v.name) for v in jac.directions())
    vals = {"W_A": W_A, "W_B": W_B, dA: V_A, dB: V_B, **numerics._structured.values_for(
        p, ("Sigma_A", "Sigma_B", "C", "lam", "mu"))}
    code = numerics.compile_exprs(jac.directional, p.dims)
    JV = code(**{k: vals[k] for k in code.inputs})
    D = DenseJacobian(outs, (S.W_A, S.W_B), {"W_A": W_A.shape, "W_B": W_B.shape}, p.dims,
                      numerics._structured.values_for(p, ("Sigma_A", "Sigma_B", "C", "lam", "mu")), S.SYMMETRIC)
    Jv = D(W_A, W_B) @ np.concatenate([V_A.ravel(), V_B.ravel()])
    np.testing.assert_allclose(Jv, np.concatenate([JV[0].ravel(), JV[1].ravel()]), rtol=1e-12, atol=1e-12)


def test_directional_derivative_is_linear_and_exact_on_a_hand_case():
    """1×1 case by hand: dW_A = W_B c − λ W_B² s_B W_A s_A, so ∂/∂W_A = −λ W_B² s_B s_A."""
    flow = theory.gradient_flow(("pos", "neg"))
    jac = theory.jacobian({"a": flow.dW_A}, (S.W_A, S.W_B), S.SYMMETRIC)
    [t] = jac.blocks["a", "W_A"]
    assert t.coeff == -S.lam and t.left == (S.W_B, S.Sigma_B, S.W_B.T) and t.right == (S.Sigma_A,)
    assert not t.transposed
    assert isinstance(jac.directional["a"], sp.MatrixExpr)


def _stiff_problem() -> numerics.Problem:
    """Signal strengths over a factor 10^3.5 in C: the data condition number is ≥ 1e3."""
    a = np.geomspace(1.0, 10**-1.75, 4)
    return numerics.random_problem(a, a, d_A=6, d_B=6, m=4, noise_A=0.05, noise_B=0.05, seed=3)


def test_stiff_detection_and_automatic_method():
    p = _stiff_problem()
    assert numerics._autochoice.data_condition(p) >= 1e3
    W_A, W_B = numerics.random_init(p, 0.1, 0)
    tr = numerics.integrate(p, W_A, W_B, 50.0)
    assert tr.method == numerics._autochoice.STIFF_METHOD + "+jac"
    easy = numerics.default_problem()
    assert numerics._autochoice.data_condition(easy) < numerics._autochoice.JAC_CONDITION
    assert numerics.integrate(easy, *numerics.random_init(easy), 5.0).method == numerics._autochoice.EXPLICIT_SMALL


@pytest.mark.parametrize("method", ["BDF", "Radau", "LSODA"])
def test_implicit_solvers_with_the_jacobian_give_the_same_flow(method):
    p = _stiff_problem()
    W_A, W_B = numerics.random_init(p, 0.1, 0)
    ref = numerics.integrate(p, W_A, W_B, 200.0, method="DOP853", rtol=1e-11, atol=1e-14, path="full")
    tr = numerics.integrate(p, W_A, W_B, 200.0, method=method, jac=True, rtol=1e-8, atol=1e-11, path="full")
    assert tr.method == method + "+jac"
    # rtol 1e-8 on a contracting (post-escape) flow: global error a few × 1e-8 of the scale.
    scale = np.abs(ref.W_A).max()
    np.testing.assert_allclose(tr.W_A[-1], ref.W_A[-1], atol=1e-5 * scale)
    np.testing.assert_allclose(tr.W_B[-1], ref.W_B[-1], atol=1e-5 * scale)


def test_jac_flag_is_validated_and_respected():
    p = numerics.default_problem()
    W_A, W_B = numerics.random_init(p)
    assert numerics.integrate(p, W_A, W_B, 1.0, method="BDF", jac=False).method == "BDF"
    with pytest.raises(TypeError, match="jac"):
        numerics.integrate(p, W_A, W_B, 1.0, jac="yes")
    with pytest.raises(ValueError, match="path"):
        numerics.integrate(p, W_A, W_B, 1.0, path="fast")
