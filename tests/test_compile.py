"""The code generator agrees with the SymPy expression evaluated entry by entry."""

from __future__ import annotations

import numpy as np
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import numerics
import theory
from tests.helpers import problems, weights

S = theory.symbols


def _entrywise(expr, p: numerics.Problem, W_A, W_B):
    """Evaluate `expr` by explicit expansion + numeric substitution (no code generation)."""
    dims = p.dims
    ex = theory.explicit(expr, dims)
    vals = {"W_A": W_A, "W_B": W_B, "Sigma_A": p.Sigma_A, "Sigma_B": p.Sigma_B, "C": p.C}
    sub = {}
    for name, M in vals.items():
        sym = sp.MatrixSymbol(name, *M.shape)
        E = theory.entries(getattr(S, name), *M.shape)
        sub.update({E[i, j]: M[i, j] for i, j in np.ndindex(*M.shape)})
    sub.update({S.lam: p.lam, S.mu: p.mu})
    if isinstance(ex, sp.MatrixBase):
        return np.array(ex.subs(sub).evalf(), dtype=float)
    return float(ex.subs(sub))


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
    assert code.source.count("W_A @ Sigma_A") == 1
    assert code.source.count("W_B @ Sigma_B") == 1
    assert "Sigma_A @ W_A.T" not in code.source  # would be a second, transposed copy


def test_unknown_node_is_a_clear_error():
    X = sp.MatrixSymbol("X", 2, 2)
    try:
        numerics.compile_exprs({"y": sp.Inverse(X)}, {})
    except TypeError as err:
        assert "Inverse" in str(err)
    else:
        raise AssertionError("expected TypeError")
