"""A user-registered loss term goes through derive, LaTeX, compile, integrate and GD unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from cdyn import numerics
from cdyn import theory
from tests.helpers import central_difference, rel_err

S = theory.symbols
nu = sp.Symbol("nu", nonnegative=True)


@pytest.fixture
def whiten_term():
    # A "variance" penalty: ν/2 (tr(W_A Σ_A W_Aᵀ) + tr(W_B Σ_B W_Bᵀ)).
    expr = (sp.Trace(S.W_A * S.Sigma_A * S.W_A.T) + sp.Trace(S.W_B * S.Sigma_B * S.W_B.T)) / 2
    theory.register_term("whiten", expr, weight=nu, description="feature variance penalty")
    yield
    theory.unregister_term("whiten")


def test_user_term_full_pipeline(whiten_term):
    flow = theory.gradient_flow(("pos", "whiten"))
    assert r"\nu" in flow.latex()
    assert "W_A Σ_A" in flow.pretty()
    p = numerics.default_problem().replace(params={"nu": 0.5})
    fn = numerics.flow_function(p, ("pos", "whiten"))
    W_A, W_B = numerics.random_init(p, 0.3, 1)
    dA, dB = fn(W_A, W_B)
    assert rel_err(-dA, central_difference(lambda X: fn.loss(X, W_B), W_A, 1e-5)) < 1e-6
    assert rel_err(-dB, central_difference(lambda X: fn.loss(W_A, X), W_B, 1e-5)) < 1e-6
    tr = numerics.integrate(p, W_A, W_B, 2.0, ("pos", "whiten"))
    gd = numerics.gradient_descent(p, W_A, W_B, 0.01, 2.0, ("pos", "whiten"))
    assert tr.status == gd.status == "completed"
    assert np.linalg.norm(gd.W_A[-1] - tr.at(2.0)[0]) < 0.05


def test_missing_user_weight_is_named(whiten_term):
    p = numerics.default_problem()
    with pytest.raises(ValueError, match="'nu'"):
        numerics.flow_function(p, ("pos", "whiten"))(*numerics.random_init(p))


def test_registration_errors():
    with pytest.raises(ValueError, match="does not depend"):
        theory.register_term("const", sp.Trace(S.Sigma_A))
    with pytest.raises(ValueError, match="already registered"):
        theory.register_term("pos", theory.get_term("pos").expr)
    with pytest.raises(ValueError, match="identifier"):
        theory.register_term("bad name", theory.get_term("pos").expr)
