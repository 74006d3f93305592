"""The matrix-free certificate (`_certify_mf`): `converged` needs a certificate for states over 1000 entries too.

Before, a state of more than `MAX_CERTIFY` entries was reported `converged` with "not certified" in the message.
Large stiff instances are built by padding the stiff d = 4 instances of `test_certify.py` (spectra [1, s], κ_C = 1/s²
from 1.1e3 to 1e6, no noise) with 296 unseen coordinates per view: the flow, its equilibria and saddles are those
of the small instance, the padded rows are moves along ker Σ (flat), and the state has 2·2·300 = 1200 entries.
The small instance is the oracle: its dense Hessian (central differences, `equilibrium_distance`) is independent
of the Hessian-vector products and Lanczos iterations under test.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from cdyn import numerics
from cdyn.numerics import _certify, _certify_mf
from tests.helpers import user_terms  # noqa: F401 -- a fixture

GRAD_TOL = 1e-6
D = 300
TERMS = ("pos", "neg")


def pair(s: float, noise: float = 0.0):
    small = numerics.random_problem([1.0, s], [1.0, s], d_A=4, d_B=4, m=2, noise_A=noise, noise_B=noise, seed=0)
    pad = np.zeros((D - 4, 2))
    big = numerics.Problem(A=np.vstack([small.A, pad]), B=np.vstack([small.B, pad]), A_xi=noise, B_xi=noise, m=2)
    return small, big


def widen(W: np.ndarray) -> np.ndarray:
    return np.hstack([W, np.zeros((W.shape[0], D - W.shape[1]))])


def certifier(p) -> _certify.Certifier:
    return _certify.Certifier(p, TERMS, np.sqrt(GRAD_TOL), lambda: None)


@pytest.mark.parametrize("s", [0.03, 0.01, 1e-3])
def test_large_stiff_equilibrium_is_certified_matrix_free(s):
    small, big = pair(s)
    assert big.m * (big.d_A + big.d_B) > _certify.MAX_CERTIFY
    W_A0, W_B0 = numerics.random_init(small, 1e-3, 0)
    tr = numerics.integrate(big, widen(W_A0), widen(W_B0), 1e7, grad_tol=GRAD_TOL, path="reduced")
    assert tr.status == "converged" and "certified matrix-free" in tr.message, tr.message
    W_A, W_B = tr.W_A[-1], tr.W_B[-1]
    assert np.abs(W_A[:, 4:]).max() < 1e-12 and np.abs(W_B[:, 4:]).max() < 1e-12  # the flow never leaves range(A)
    # The oracle: the dense central-difference Hessian of the small instance at the same point.
    ed = numerics.equilibrium_distance(small, W_A[:, :4], W_B[:, :4])
    scale = np.sqrt(np.sum(W_A**2) + np.sum(W_B**2))
    assert ed.stable and ed.gap > 10
    assert ed.distance <= 2 * np.sqrt(GRAD_TOL) * scale  # eq_tol = sqrt(grad_tol), 2x for the FD Hessian
    assert abs(numerics.kappa(big, W_A, W_B) - numerics.kappa_limit(big)) < 1e-2


@pytest.mark.parametrize("s", [0.03, 1e-3])
def test_large_saddle_is_not_certified(s):
    """On the plateau (t = 1000: the strong mode has settled, the weak one has not grown) an unstable direction
    is found; the dense test on the small instance agrees that the point is a saddle."""
    small, big = pair(s)
    W = numerics.random_init(small, 1e-3, 0)
    tr = numerics.integrate(small, *W, 1000.0, n_points=2)
    W_A, W_B = tr.W_A[-1], tr.W_B[-1]
    cert = certifier(big)(1000.0, widen(W_A), widen(W_B))
    assert not cert.ok and not cert.stable and "unstable direction" in cert.reason
    dense = _certify.Certifier(small, TERMS, np.sqrt(GRAD_TOL), lambda: numerics._integrate._weight_system(
        small, TERMS, *W, "full").make_jac())(1000.0, W_A, W_B)
    assert not dense.stable
    # A Rayleigh quotient above rounding proves an eigenvalue of J at least that large: below the dense top one.
    assert 0 < cert.top <= dense.top * (1 + 1e-6)


def test_large_plateau_run_does_not_end_converged():
    small, big = pair(1e-3)
    W_A0, W_B0 = numerics.random_init(small, 1e-3, 0)
    tr = numerics.integrate(big, widen(W_A0), widen(W_B0), 3e4, grad_tol=GRAD_TOL, path="reduced")
    assert tr.status in ("plateau", "completed") and tr.message, tr.message
    assert numerics.kappa(big, tr.W_A[-1], tr.W_B[-1]) > 1e5  # indeed far from the limit 1


def _dense_and_matrix_free(p, terms, tr):
    """Both certificates of the final state of `tr`, checked to agree: γ = θ - ‖r‖ with the Ritz residual
    ‖r‖ ≤ 1e-6 θ (eigsh's tol) and θ - λ ≤ ‖r‖²/gap, so within 1e-6 of the dense eigh's (2e-6 for ARPACK's own
    residual estimate); the distance: ‖J⁺f‖ (dense) against the CG Newton step plus its residual bound (an
    upper bound, equal to first order)."""
    W_A, W_B = tr.W_A[-1], tr.W_B[-1]
    cert = _certify.Certifier(p, terms, np.sqrt(GRAD_TOL),
                              lambda: numerics._integrate._weight_system(p, terms, W_A, W_B, "full").make_jac())
    dense, free = cert(tr.t_stop, W_A, W_B), _certify_mf.matrix_free_certificate(cert, tr.t_stop, W_A, W_B)
    assert dense.ok and free.ok
    assert abs(free.gamma - dense.gamma) <= 2e-6 * dense.gamma
    assert dense.distance * (1 - 1e-6) <= free.distance <= dense.distance * 1.01
    return dense, free


def test_matrix_free_agrees_with_the_dense_certificate():
    """A state of 400 entries, under MAX_CERTIFY, certified both ways: same verdict, same γ and distance."""
    p = numerics.random_problem([1.0, 0.7], [1.0, 0.6], d_A=100, d_B=100, m=2, noise_A=0.1, noise_B=0.1, seed=1)
    tr = numerics.integrate(p, *numerics.random_init(p, 1e-2, 0), 3000.0, grad_tol=GRAD_TOL)
    assert tr.status == "converged"
    _dense_and_matrix_free(p, TERMS, tr)


@pytest.mark.parametrize("terms, group", [(("pos", "neg"), "GL"), (("pos", "neg", "wd"), "O")])
def test_lanczos_certificate_agrees_with_the_dense_one(terms, group):
    """m = 4: the invariant subspace has 56-64 entries, above the size `smallest` forms densely, so Lanczos runs
    with the structured projector off the GL(4) orbit (16 tangents) or, with weight decay, the O(4) one (6).
    The oracle is the dense certificate on the full 320-entry state (eigh, with a dense tangent basis)."""
    p = numerics.random_problem([1.0, 0.7, 0.5, 0.3], [1.0, 0.6, 0.45, 0.35], d_A=40, d_B=40, m=4, noise_A=0.1,
                                noise_B=0.1, seed=1)
    p = p.replace(mu=0.05) if "wd" in terms else p
    tr = numerics.integrate(p, *numerics.random_init(p, 1e-2, 0), 3000.0, terms, grad_tol=GRAD_TOL, n_points=2)
    assert tr.status == "converged"
    _, free = _dense_and_matrix_free(p, terms, tr)
    assert int(re.search(r"(\d+) entries", free.reason).group(1)) > 50  # Lanczos, not the dense small case


def test_too_large_a_state_is_uncertified_not_converged(monkeypatch):
    small, big = pair(0.03)
    W = numerics.random_init(small, 1e-3, 0)
    monkeypatch.setattr(_certify_mf, "MAX_MATRIX_FREE", 100)
    tr = numerics.integrate(big, widen(W[0]), widen(W[1]), 1e7, grad_tol=GRAD_TOL, path="reduced")
    assert tr.status == "uncertified" and "beyond the matrix-free certificate's limit" in tr.message


def test_invariant_subspace_certificate_equals_the_full_state_one():
    """THEORY §8: with isotropic noise the certificate runs on the small problem (QᵀA, QᵀB, σ) of the invariant
    subspace. The oracle is the same instance with its noise given as σ·O for a random orthogonal O: the same
    Σ_A = AAᵀ + σ²I, but not recognised as isotropic, so the certificate runs on the whole state (O(md) per
    Hessian-vector product). Both decide the same and agree on γ and the Newton distance to Lanczos/CG accuracy."""
    rng = np.random.default_rng(5)
    d, sigma = 48, 0.1
    iso = numerics.random_problem([1.0, 0.6, 0.3], [0.9, 0.5, 0.35], d_A=d, d_B=d, m=3, noise_A=sigma, noise_B=sigma,
                                  seed=2)
    O_A, _ = np.linalg.qr(rng.standard_normal((d, d)))
    O_B, _ = np.linalg.qr(rng.standard_normal((d, d)))
    dense = numerics.Problem(A=iso.A, B=iso.B, A_xi=sigma * O_A, B_xi=sigma * O_B, m=3)
    assert _certify_mf.invariant_subspace(iso, TERMS, iso.A.T, iso.B.T) is not None
    assert _certify_mf.invariant_subspace(dense, TERMS, iso.A.T, iso.B.T) is None
    tr = numerics.integrate(iso, *numerics.random_init(iso, 1e-3, 0), 3000.0, TERMS, grad_tol=GRAD_TOL, n_points=2)
    assert tr.status == "converged"
    W = (tr.W_A[-1], tr.W_B[-1])
    a = _certify_mf.matrix_free_certificate(certifier(iso), tr.t_stop, *W)
    b = _certify_mf.matrix_free_certificate(certifier(dense), tr.t_stop, *W)
    assert a.ok and b.ok and "invariant subspace" in a.reason and "invariant subspace" not in b.reason
    # Lanczos stops at tol 1e-6 relative, CG at 1e-8: the two routes agree to that, not to rounding.
    assert a.gamma == pytest.approx(b.gamma, rel=1e-5)
    assert a.distance == pytest.approx(b.distance, rel=1e-5)


@pytest.mark.parametrize("terms, noise", [(("pos", "negu"), 0.1), (("pos", "negu", "ridge"), 0.1),
                                          (("pos", "negu"), 0.0)])
def test_user_terms_matrix_free_agrees_with_dense(user_terms, terms, noise):
    """User terms: the group (GL, O) and, without noise, the moves along ker Σ are verified on the loss, then
    projected off by the structured projector; 96 entries, so Lanczos runs. Oracle: the dense certificate."""
    p = numerics.random_problem([1.0, 0.5, 0.3, 0.2], [1.0, 0.6, 0.4, 0.3], d_A=12, d_B=12, m=4, noise_A=noise,
                                noise_B=noise, seed=0).replace(params={"nu": 0.05})
    tr = numerics.integrate(p, *numerics.random_init(p, 1e-2, 0), 5000.0, terms, grad_tol=GRAD_TOL, n_points=2)
    _, free = _dense_and_matrix_free(p, terms, tr)
    assert "Lanczos" in free.reason
