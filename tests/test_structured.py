"""The factored flow (`theory.structured_flow`): the same flow, never a d×d matrix."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from cdyn import numerics
from cdyn import theory
from tests.helpers import problems, weights
from cdyn.theory._chains import equal
from cdyn.theory._structured import factored_moments, noise_substitution

S = theory.symbols
NOISES = [("thin", "thin"), ("isotropic", "isotropic"), ("none", "isotropic"), ("thin", "none")]


@pytest.mark.parametrize("noise", NOISES)
@pytest.mark.parametrize("terms", [("pos", "neg"), ("pos", "neg", "wd"), ("neg",)])
def test_structured_flow_is_the_flow_with_the_derived_moments(noise, terms):
    """Exact symbolic identity: expanding and regrouping changed nothing but the form."""
    flow, sf = theory.gradient_flow(terms), theory.structured_flow(terms, *noise)
    sub = {**factored_moments(*noise), **noise_substitution(*noise)}
    assert equal(sf.dW_A, flow.dW_A.xreplace(sub), S.SYMMETRIC)
    assert equal(sf.dW_B, flow.dW_B.xreplace(sub), S.SYMMETRIC)
    # Negative control: the comparison can fail.
    assert not equal(sf.dW_A, (2 * flow.dW_A).xreplace(sub), S.SYMMETRIC)


def test_structured_flow_mentions_no_moment_matrix():
    for noise in NOISES:
        sf = theory.structured_flow(("pos", "neg", "wd"), *noise)
        for e in (sf.dW_A, sf.dW_B, sf.loss):
            assert not e.has(S.Sigma_A) and not e.has(S.Sigma_B) and not e.has(S.C)


def _flops(path: str, d: int, noise=("isotropic", "isotropic")) -> float:
    dims = {S.m: 8, S.r: 8, S.k_A: 4, S.k_B: 4, S.d_A: d, S.d_B: d}
    flow = theory.structured_flow(("pos", "neg"), *noise) if path == "structured" else theory.gradient_flow()
    code = numerics.compile_exprs({"a": flow.dW_A, "b": flow.dW_B}, dims, varying=("W_A", "W_B"),
                                  symmetric=S.SYMMETRIC)
    return code.flops


@pytest.mark.parametrize("noise", [("isotropic", "isotropic"), ("thin", "thin"), ("none", "none")])
def test_structured_cost_is_linear_in_d(noise):
    """O(m·d·(r+k)): doubling d doubles the per-call flops; the full flow's quadruple."""
    ratio = _flops("structured", 4000, noise) / _flops("structured", 2000, noise)
    assert 1.99 <= ratio <= 2.0 + 1e-9
    full = _flops("full", 4000) / _flops("full", 2000)
    assert full > 3.9


def _iso_problem(seed: int, d_A: int, d_B: int, r: int, m: int, sa: float, sb: float) -> numerics.Problem:
    rng = np.random.default_rng(seed)
    orth = numerics.random_orthonormal
    A = orth(rng, d_A, r) @ np.diag(rng.uniform(0.3, 2, r)) @ orth(rng, r, r).T
    B = orth(rng, d_B, r) @ np.diag(rng.uniform(0.3, 2, r)) @ orth(rng, r, r).T
    V = numerics.random_orthonormal(rng, r, r)
    Sz = V @ np.diag(rng.uniform(0.5, 1.5, r)) @ V.T
    return numerics.Problem(A=A, B=B, A_xi=sa * np.eye(d_A) if sa else None, B_xi=sb * np.eye(d_B) if sb else None,
                            Sigma_z=Sz, m=m, lam=float(rng.uniform(0.5, 2)), mu=float(rng.uniform(0, 0.3)))


@st.composite
def iso_problems(draw):
    r, m = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    d_A, d_B = r + draw(st.integers(0, 5)), r + draw(st.integers(0, 5))
    sa, sb = draw(st.sampled_from([0.0, 0.2, 0.7])), draw(st.sampled_from([0.0, 0.3]))
    return _iso_problem(draw(st.integers(0, 2**31 - 1)), d_A, d_B, r, m, sa, sb)


def _assert_same_flow(p: numerics.Problem, terms) -> None:
    W_A, W_B = weights(p, 0.8, 3)
    full = numerics.flow_function(p, terms, path="full")
    fast = numerics.flow_function(p, terms, path="structured")
    for a, b in zip(full(W_A, W_B), fast(W_A, W_B)):
        # Same sums in another order: rounding-level agreement.
        np.testing.assert_allclose(b, a, rtol=1e-11, atol=1e-12 * (1 + np.abs(a).max()))
    assert np.isclose(fast.loss(W_A, W_B), full.loss(W_A, W_B), rtol=1e-11, atol=1e-12)


@settings(max_examples=12)
@given(problems(max_r=3, max_extra_d=4, max_m=3), st.sampled_from([("pos", "neg"), ("pos", "neg", "wd")]))
def test_structured_rhs_equals_full_rhs_thin_noise(p, terms):
    _assert_same_flow(p, terms)


@settings(max_examples=12)
@given(iso_problems(), st.sampled_from([("pos", "neg"), ("pos", "neg", "wd"), ("pos",)]))
def test_structured_rhs_equals_full_rhs_isotropic_noise(p, terms):
    assert numerics._structured.noise_kinds(p)[0][0] in ("isotropic", "none")
    _assert_same_flow(p, terms)


def test_noise_classification():
    kind = numerics._structured.noise_kind
    assert kind(np.zeros((5, 0))) == ("none", 0.0)
    assert kind(0.3 * np.eye(5)) == ("isotropic", 0.3)
    bumped = 0.3 * np.eye(5)
    bumped[0, 1] = 1e-300
    assert kind(bumped)[0] == "thin"
    assert kind(np.ones((5, 2)))[0] == "thin"


def test_structured_integration_matches_full_and_never_forms_sigma():
    p = _iso_problem(4, 60, 50, 3, 2, 0.2, 0.3)
    W_A, W_B = weights(p, 0.05, 1)
    fast = numerics.integrate(p, W_A, W_B, 30.0, path="structured", rtol=1e-10, atol=1e-13)
    assert fast.path == "structured"
    assert "_moments" not in p.__dict__  # Problem.Sigma_A / C were never evaluated
    full = numerics.integrate(p, W_A, W_B, 30.0, path="full", rtol=1e-10, atol=1e-13)
    scale = np.abs(full.W_A).max()
    # Two runs at rtol 1e-10 through a saddle escape (error growth ~e^{gT}): 1e-6 relative.
    np.testing.assert_allclose(fast.W_A, full.W_A, atol=1e-6 * scale)
    np.testing.assert_allclose(fast.W_B, full.W_B, atol=1e-6 * scale)


def test_isotropic_factored_loss_reads_sigma_symbols():
    sf = theory.structured_flow(("pos", "neg"), "isotropic", "isotropic")
    assert sf.loss.has(theory._structured.sigma_A) and not sf.loss.has(S.A_xi)
    assert isinstance(sf.dW_A, sp.MatrixExpr)
