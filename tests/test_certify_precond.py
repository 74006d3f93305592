"""The Kronecker-preconditioned Davidson certificate (`_certify_precond`) against a dense eigen-decomposition.

Instances: `benchmarks/peers.py`'s family (spectra geomspace(1, 0.3) and (0.9, 0.35), isotropic noise σ = 0.1,
λ = 1) at d = 64..256, r = m = 4..8, so THEORY §8's subspace has n = 64..256 entries: B = -PJP + c(I-P) is formed
column by column (n products) and eigen-decomposed. The oracle shares B with the code under test on purpose: what
is tested is what the iteration reads off it (the smallest eigenvalue, the residual, γ, the Newton distance).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from cdyn import numerics
from cdyn.numerics import _certify, _certify_mf
from cdyn.numerics._certify_precond import davidson_smallest, kronecker_preconditioner

GRAD_TOL = 1e-6
EPS = np.finfo(float).eps


def problem(d: int, m: int, mu: float = 0.0):
    p = numerics.random_problem(np.geomspace(1.0, 0.3, m), np.geomspace(0.9, 0.35, m), d_A=d, d_B=d, m=m,
                                noise_A=0.1, noise_B=0.1, lam=1.0, seed=1)
    return p.replace(mu=mu) if mu else p


@lru_cache(maxsize=None)
def converged(d: int, m: int, terms: tuple[str, ...], mu: float = 0.0):
    p = problem(d, m, mu)
    tr = numerics.integrate(p, *numerics.random_init(p, 1e-2, 0), 5000.0, terms, grad_tol=GRAD_TOL, n_points=2)
    assert tr.status == "converged", tr.message
    return tr.t_stop, tr.W_A[-1], tr.W_B[-1]


def saddle(d: int, m: int):
    """The state of m - 1 units at t = 800 (near their equilibrium) padded with a zero unit, which the flow
    keeps at zero (THEORY §8 multiplies it by H) while the mode it could learn would grow: B has a negative
    eigenvalue, and H_A, H_B are singular (K's floor in the preconditioner)."""
    p = problem(d, m)
    tr = numerics.integrate(p.replace(m=m - 1), *numerics.random_init(p.replace(m=m - 1), 1e-2, 0), 800.0,
                            ("pos", "neg"), n_points=2)
    return p, np.vstack([tr.W_A[-1], np.zeros((1, d))]), np.vstack([tr.W_B[-1], np.zeros((1, d))])


def dense(k) -> np.ndarray:
    n = k.f.size
    M = np.column_stack([k.B(e) for e in np.eye(n)])
    return (M + M.T) / 2


def certifier(p, terms):
    return _certify.Certifier(p, terms, np.sqrt(GRAD_TOL), lambda: None)


def check_pair(k, M, terms):
    """Davidson's pair is a Ritz pair of B whose residual is B's; θ - ‖r‖ bounds the smallest eigenvalue below."""
    T = kronecker_preconditioner(k.p, terms, k.Z_A, k.Z_B, k.P, k.c)
    found = davidson_smallest(k.B, T, k.f.size, 1e-6, k.tau)
    assert found is not None  # converged without the Lanczos fallback
    theta, x, r = found
    w = np.linalg.eigvalsh(M)
    rounding = 10 * k.f.size * EPS * k.c  # of a dense product Mx (‖M‖ = c)
    assert abs(np.linalg.norm(x) - 1) < 1e-12 and abs(theta - x @ M @ x) <= rounding
    assert abs(r - np.linalg.norm(M @ x - theta * x)) <= rounding  # the true residual, not the recurrence's
    assert w[0] - rounding <= theta <= w[0] + r + rounding  # a Rayleigh quotient, within ‖r‖ of the *smallest* eigenvalue
    assert r <= 2e-6 * abs(theta)  # converged to ARPACK's criterion (tol 1e-6 relative)
    return w[0]


@pytest.mark.parametrize("d, m, terms, mu, kick", [
    (64, 4, ("pos", "neg"), 0.0, 0.0),
    (128, 6, ("pos", "neg", "wd"), 0.05, 0.0),
    (256, 8, ("pos", "neg"), 0.0, 0.0),
    (64, 4, ("pos", "neg"), 0.0, 1e-3),  # a converged state pushed off equilibrium: stable, not yet close
])
def test_gamma_and_distance_agree_with_the_dense_decomposition(d, m, terms, mu, kick):
    p = problem(d, m, mu)
    t, W_A, W_B = converged(d, m, terms, mu)
    rng = np.random.default_rng(7)
    W_A, W_B = W_A + kick * rng.standard_normal(W_A.shape), W_B + kick * rng.standard_normal(W_B.shape)
    cert = certifier(p, terms)
    k = _certify_mf.curvature(cert, W_A, W_B)
    assert k.sub is not None and k.f.size > 50  # THEORY §8's subspace, too large for the dense small case
    M = dense(k)
    lam_min = check_pair(k, M, terms)
    out = _certify_mf.matrix_free_certificate(cert, t, W_A, W_B)
    assert out.stable and out.decided and (out.ok == (kick == 0.0)), out.reason
    assert "Davidson" in out.reason or not out.ok
    # γ = θ - ‖r‖: a lower bound of the smallest curvature, and within 2‖r‖ ≤ 4e-6·θ of it.
    rounding = 10 * k.f.size * EPS * k.c
    assert lam_min * (1 - 4e-6) <= out.gamma <= lam_min + rounding
    # The Newton distance bounds ‖B⁻¹Pf‖ from above, and is tight to the CG stop (‖r_CG‖ ≤ 1e-8‖Pf‖, twice).
    Pf = k.P(k.f)
    exact = np.linalg.norm(np.linalg.solve(M, Pf))
    assert exact * (1 - 1e-10) <= out.distance <= exact + 2.2e-8 * np.linalg.norm(Pf) / out.gamma


def test_a_saddle_is_found_unstable():
    p, W_A, W_B = saddle(64, 4)
    cert = certifier(p, ("pos", "neg"))
    k = _certify_mf.curvature(cert, W_A, W_B)
    M = dense(k)
    lam_min = check_pair(k, M, ("pos", "neg"))
    assert lam_min < -1e-3  # the dense oracle: a saddle indeed
    out = _certify_mf.matrix_free_certificate(cert, 1.0, W_A, W_B)
    assert not out.ok and not out.stable and "unstable direction" in out.reason, out.reason
    # The growth rate reported is a Rayleigh quotient: at most the top eigenvalue of J on the complement.
    assert 0 < out.top <= -lam_min * (1 + 1e-12)


def test_same_state_same_certificate():
    p = problem(64, 4)
    t, W_A, W_B = converged(64, 4, ("pos", "neg"))
    a = _certify_mf.matrix_free_certificate(certifier(p, ("pos", "neg")), t, W_A, W_B)
    b = _certify_mf.matrix_free_certificate(certifier(p, ("pos", "neg")), t, W_A, W_B)
    assert a == b and a.ok
