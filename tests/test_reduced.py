"""The exact reduced ODE of THEORY §8: derived symbolically, equal to the full flow."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from cdyn import numerics
from cdyn import theory
from cdyn.numerics._reduced import ReducedSystem
from tests.helpers import weights
from tests.test_structured import _iso_problem, iso_problems
from cdyn.theory import _reduced as R


def test_derived_equations_are_those_of_theory_section_8():
    assert R.check_against_theory() == {"dX_A": True, "dX_B": True, "dG_A": True, "dG_B": True, "M": True}


def test_the_check_rejects_a_misstated_equation():
    stated = R.theory_statement()
    # THEORY's H_B without its σ_B² G_B term: a plausible mis-statement.
    Sb_A = R.S_A + R.sigma_A**2 * sp.Identity(R.r_A)
    H_B_wrong = R.X_B * (R.S_B + R.sigma_B**2 * sp.Identity(R.r_B)) * R.X_B.T
    stated["dX_A"] = R.X_B * R.Ct.T - theory.symbols.lam * H_B_wrong * R.X_A * Sb_A
    assert R.check_against_theory(stated)["dX_A"] is False


def test_a_term_that_leaves_the_subspace_is_not_reducible():
    Z = sp.MatrixSymbol("Z", theory.symbols.d_A, theory.symbols.m)
    theory.register_term("anchor", sp.Trace(theory.symbols.W_A * Z), replace=True)
    try:
        with pytest.raises(theory.NotReducible, match="does not close"):
            theory.reduced_flow(("pos", "neg", "anchor"))
    finally:
        theory.unregister_term("anchor")


def _map_back(rs: ReducedSystem, y: np.ndarray):
    W_A, W_B = rs.weights(y[:, None])
    return W_A[0], W_B[0]


@settings(max_examples=15)
@given(iso_problems(), st.sampled_from([("pos", "neg"), ("pos", "neg", "wd"), ("pos",)]), st.integers(0, 99))
def test_reduced_rhs_maps_back_to_the_full_rhs(p, terms, seed):
    """At any state in the span, Ẇ = Ẋ Uᵀ + Ẏ Nᵀ: exact up to rounding."""
    W_A, W_B = weights(p, 0.7, seed)
    rs = ReducedSystem.build(p, terms, W_A, W_B)
    W_A1, W_B1 = _map_back(rs, rs.y0)
    np.testing.assert_allclose(W_A1, W_A, atol=1e-13 * (1 + np.abs(W_A).max()))
    np.testing.assert_allclose(W_B1, W_B, atol=1e-13 * (1 + np.abs(W_B).max()))
    dA, dB = numerics.flow_function(p, terms)(W_A, W_B)
    gA, gB = _map_back(rs, rs.vector_field()(0.0, rs.y0))
    scale = 1 + max(np.abs(dA).max(), np.abs(dB).max())
    np.testing.assert_allclose(gA, dA, atol=1e-12 * scale)
    np.testing.assert_allclose(gB, dB, atol=1e-12 * scale)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reduced_integration_matches_full_integration(seed):
    rng = np.random.default_rng(seed)
    p = _iso_problem(seed, int(rng.integers(8, 30)), int(rng.integers(8, 30)), 3, int(rng.integers(1, 4)), 0.3, 0.2)
    W_A, W_B = weights(p, 0.01, seed)
    kw = dict(rtol=1e-10, atol=1e-13, method="DOP853")
    red = numerics.integrate(p, W_A, W_B, 25.0, path="reduced", **kw)
    full = numerics.integrate(p, W_A, W_B, 25.0, path="full", **kw)
    assert red.path == "reduced" and full.path == "full"
    assert red.W_A.shape == full.W_A.shape and red.W_B.shape == full.W_B.shape
    scale = max(np.abs(full.W_A).max(), np.abs(full.W_B).max())
    # Two solutions at rtol 1e-10 through a saddle escape (small init, errors grow like
    # e^{g t}): agreement to 1e-7 of the weights' scale is what the tolerance supports.
    np.testing.assert_allclose(red.W_A, full.W_A, atol=1e-7 * scale)
    np.testing.assert_allclose(red.W_B, full.W_B, atol=1e-7 * scale)
    kr = [numerics.kappa(p, a, b) for a, b in zip(red.W_A[::40], red.W_B[::40])]
    kf = [numerics.kappa(p, a, b) for a, b in zip(full.W_A[::40], full.W_B[::40])]
    np.testing.assert_allclose(kr, kf, rtol=1e-5)
    a, b = red.at(11.3)
    a2, b2 = full.at(11.3)
    np.testing.assert_allclose(a, a2, atol=1e-7 * scale)


def test_statuses_and_stop_times_agree():
    p = _iso_problem(7, 40, 30, 3, 2, 0.1, 0.2)
    W_A, W_B = weights(p, 0.01, 2)
    kw = dict(rtol=1e-10, atol=1e-13)
    red = numerics.integrate(p, W_A, W_B, 200.0, ("pos",), path="reduced", **kw)
    full = numerics.integrate(p, W_A, W_B, 200.0, ("pos",), path="full", **kw)
    assert red.status == full.status == "diverged"
    assert red.t_stop == pytest.approx(full.t_stop, rel=1e-6)
    red = numerics.integrate(p, W_A, W_B, 500.0, path="reduced", grad_tol=1e-4, **kw)
    full = numerics.integrate(p, W_A, W_B, 500.0, path="full", grad_tol=1e-4, **kw)
    assert red.status == full.status == "converged"
    # The event root is located on each solver's own dense output: 1e-4 relative.
    assert red.t_stop == pytest.approx(full.t_stop, rel=1e-4)


def test_auto_takes_the_reduced_path_when_it_is_cheaper_and_allowed():
    p = _iso_problem(3, 400, 300, 3, 2, 0.1, 0.1)
    W_A, W_B = weights(p, 0.01, 0)
    tr = numerics.integrate(p, W_A, W_B, 5.0)
    assert tr.path == "reduced"
    assert "_moments" not in p.__dict__  # Σ_A, Σ_B, C never formed
    assert tr.W_A.shape == (401, 2, 400)
    tiny = numerics.default_problem()
    assert numerics.integrate(tiny, *numerics.random_init(tiny), 1.0).path == "full"


def test_reduced_path_refuses_anisotropic_noise_with_a_clear_error():
    p = _iso_problem(1, 6, 6, 2, 2, 0.2, 0.2)
    p = p.replace(A_xi=np.random.default_rng(0).standard_normal((6, 2)))
    W_A, W_B = weights(p, 0.1, 0)
    with pytest.raises(ValueError, match="path: .*not isotropic"):
        numerics.integrate(p, W_A, W_B, 1.0, path="reduced")
    assert numerics.integrate(p, W_A, W_B, 1.0, path="auto").path in ("full", "structured")


def test_initialisation_inside_the_signal_space_has_no_complement():
    p = _iso_problem(5, 20, 15, 3, 2, 0.2, 0.2)
    rng = np.random.default_rng(1)
    U_A = np.linalg.svd(p.A, full_matrices=False)[0]
    U_B = np.linalg.svd(p.B, full_matrices=False)[0]
    W_A, W_B = 0.1 * rng.standard_normal((2, 3)) @ U_A.T, 0.1 * rng.standard_normal((2, 3)) @ U_B.T
    rs = ReducedSystem.build(p, ("pos", "neg"), W_A, W_B)
    assert rs.shapes["Y_A"] == (2, 0) and rs.shapes["Y_B"] == (2, 0)
    red = numerics.integrate(p, W_A, W_B, 10.0, path="reduced", rtol=1e-10, atol=1e-13)
    full = numerics.integrate(p, W_A, W_B, 10.0, path="full", rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(red.W_A, full.W_A, atol=1e-8)
