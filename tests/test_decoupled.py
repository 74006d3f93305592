"""The decoupled reduction (theory/_decoupled.py) against the matrix flow on rotated aligned instances."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from cdyn import numerics
from cdyn import theory
from cdyn.claims._strategies import decoupled_spec
from cdyn.theory import decoupled as D

EPS = np.finfo(float).eps


@st.composite
def aligned_states(draw):
    spec = draw(decoupled_spec(noise=(0.0, 1.0)))
    r = len(spec["a"])
    w = st.floats(-1.0, 1.0, allow_nan=False).filter(lambda x: abs(x) > 1e-3)
    return spec, np.array([draw(w) for _ in range(r)]), np.array([draw(w) for _ in range(r)]), draw(st.floats(0, 1))


@pytest.mark.parametrize("terms", [("pos",), ("neg",), ("wd",), ("pos", "neg"), ("pos", "neg", "wd")])
@settings(max_examples=15)
@given(case=aligned_states())
def test_reduction_equals_the_matrix_flow(terms, case):
    """Projected onto the aligned basis, the matrix flow is the derived per-mode ODE; nothing leaks off it."""
    spec, wa, wb, mu = case
    d = numerics.decoupled_instance(spec["a"], spec["b"], sigma_A=spec["sigma_A"], sigma_B=spec["sigma_B"],
                                    extra_d_A=spec["extra_d_A"], extra_d_B=spec["extra_d_B"], lam=spec["lam"],
                                    mu=mu, seed=spec["seed"])
    W_A, W_B = d.init(wa, wb)
    dA, dB = numerics.flow_function(d.problem, terms)(W_A, W_B)
    pa, pb = d.modes(dA, dB)
    ma, mb = numerics.mode_derivatives(d, wa, wb, terms)
    # Round-off of a few products of matrices whose entries are at most `scale`.
    scale = max(1.0, float(np.abs(dA).max() + np.abs(dB).max()), float(np.max(d.alpha)) * d.problem.lam)
    tol = 64 * EPS * scale * (W_A.shape[1] + W_B.shape[1])
    assert np.abs(pa - ma).max() <= tol and np.abs(pb - mb).max() <= tol
    assert d.off_mode(dA, dB) <= tol


def test_per_mode_equations_are_theory_section_5():
    fl = D.decoupled_flow(("pos", "neg"))
    lam = theory.symbols.lam
    expected_A = D.g * D.w_B - lam * D.alpha_A * D.alpha_B * D.w_A * D.w_B**2
    expected_B = D.g * D.w_A - lam * D.alpha_A * D.alpha_B * D.w_B * D.w_A**2
    assert sp.expand(D.in_mode_parameters(fl.dw_A) - expected_A) == 0
    assert sp.expand(D.in_mode_parameters(fl.dw_B) - expected_B) == 0
    # Noiseless, in s = a w: ds_A/dt = a² s_B (1 − λ s_A s_B) (THEORY §5).
    s_A, s_B = sp.symbols("s_A s_B")
    noiseless = {D.sigma_A: 0, D.sigma_B: 0}
    lhs = (D.a * fl.dw_A).subs(noiseless).subs({D.w_A: s_A / D.a, D.w_B: s_B / D.b})
    assert sp.simplify(lhs - D.a**2 * s_B * (1 - lam * s_A * s_B)) == 0


def test_terms_reduce_separately_and_add_up():
    fl = D.decoupled_flow(("pos", "neg", "wd"))
    assert sp.expand(fl.dw_A - sum(fl.parts_A.values())) == 0
    assert sp.expand(D.in_mode_parameters(fl.parts_A["wd"]) + theory.symbols.mu * D.w_A) == 0


def test_mode_quantities():
    fl = D.decoupled_flow(("pos", "neg"))
    assert sp.expand(fl.q - D.a * D.b * D.w_A * D.w_B) == 0
    assert sp.simplify(D.mode_rho() - D.a * D.b / sp.sqrt((D.a**2 + D.sigma_A**2) * (D.b**2 + D.sigma_B**2))) == 0


def test_mode_rho_equals_the_whitened_svd():
    d = numerics.decoupled_instance([2.0, 1.0, 0.3], [1.5, 0.9, 0.5], sigma_A=0.2, sigma_B=0.4, extra_d_A=2, seed=4)
    np.testing.assert_allclose(np.sort(d.rho)[::-1], numerics.canonical_correlations(d.problem), rtol=1e-12)
    np.testing.assert_allclose(np.sort(d.g)[::-1], np.linalg.svd(d.problem.C, compute_uv=False)[:3], rtol=1e-12)


def test_a_coupled_or_non_diagonal_result_is_refused():
    x = sp.Symbol("x")
    with pytest.raises(ValueError, match="not invariant"):
        D._per_mode(sp.Matrix([[1, x], [0, 1]]), "test")
    modes = [D._indexed(i) for i in range(2)]
    coupled = sp.diag(modes[0][D.w_A] * modes[1][D.w_B], modes[1][D.w_A])
    with pytest.raises(ValueError, match="coupled"):
        D._per_mode(coupled, "test")
