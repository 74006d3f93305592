"""`converged` means a certified equilibrium, not a small gradient on a plateau (issue 10).

Stiff instances: spectra [1, s] in both views, d = 4, m = 2, no noise, so the data condition
number is κ_C = 1/s² from 1.1e3 to 1e6. Before the certificate, s = 1e-3 reported
`converged at t=1.65e+04` with κ = 6.9e5 against a limit of 1.
"""

from __future__ import annotations

import numpy as np
import pytest

from cdyn import numerics
from tests.helpers import user_terms  # noqa: F401 -- a fixture

GRAD_TOL = 1e-6


def stiff(s: float):
    p = numerics.random_problem([1.0, s], [1.0, s], d_A=4, d_B=4, m=2, noise_A=0.0, noise_B=0.0, seed=0)
    return p, numerics.random_init(p, 1e-3, 0)


@pytest.mark.parametrize("s", [0.03, 0.01, 1e-3])
def test_converged_only_at_a_certified_equilibrium(s):
    p, W = stiff(s)
    tr = numerics.integrate(p, *W, 1e7, grad_tol=GRAD_TOL)
    assert tr.status in ("converged", "completed", "plateau") and tr.message
    if tr.status != "converged":
        return  # honest: not certified within t_end (the message says why)
    W_A, W_B = tr.W_A[-1], tr.W_B[-1]
    # An independent check (central-difference Hessian, null space counted from the symmetries):
    ed = numerics.equilibrium_distance(p, W_A, W_B)
    scale = np.sqrt(np.sum(W_A**2) + np.sum(W_B**2))
    assert ed.stable and ed.gap > 10
    # eq_tol = sqrt(grad_tol) is the certified relative distance; 2x for the FD Hessian's error.
    assert ed.distance <= 2 * np.sqrt(GRAD_TOL) * scale
    # κ is near its CCA limit (1 here): the false stop had κ = 6.9e5.
    assert abs(numerics.kappa(p, W_A, W_B) - numerics.kappa_limit(p)) < 1e-2


def test_the_plateau_of_the_issue_is_not_called_converged():
    p, W = stiff(1e-3)
    tr = numerics.integrate(p, *W, 1e7, grad_tol=GRAD_TOL)
    # The old stop at t = 1.65e4 is seen as a saddle and passed; if the run ends converged it is far later.
    assert "saddle/plateau at t=1.652e+04" in tr.message
    assert tr.status != "converged" or tr.t_stop > 1e5
    # Stopped before the escape, the run says where it is.
    early = numerics.integrate(p, *W, 3e4, grad_tol=GRAD_TOL)
    assert early.status == "plateau" and "unstable direction" in early.message
    assert numerics.kappa(p, early.W_A[-1], early.W_B[-1]) > 1e5  # indeed far from the limit 1


def test_default_instance_still_converges_early():
    p = numerics.default_problem()
    tr = numerics.integrate(p, *numerics.random_init(p, 1e-3, 0), 500.0, grad_tol=GRAD_TOL)
    assert tr.status == "converged" and tr.t_stop < 500.0 and "certified" in tr.message


# --- user terms: symmetries are verified on the loss, never assumed -----------------------------

def _loss(p, terms):
    return numerics.flow_function(p, terms).loss


def test_symmetries_are_found_by_evaluating_the_loss(user_terms):
    from cdyn.numerics._certificate import symmetries

    p = numerics.random_problem([1.0, 0.5], [1.0, 0.6], d_A=4, d_B=4, m=2, noise_A=0.0, noise_B=0.0,
                                seed=0).replace(params={"nu": 0.05})
    W_A, W_B = numerics.random_init(p, 0.3, 0)
    nulls = tuple(np.linalg.eigh(S)[1][:, :2] for S in (p.Sigma_A, p.Sigma_B))  # ker Σ: r = 2 of d = 4
    assert symmetries(_loss(p, ("pos", "negu")), W_A, W_B, nulls) == ("GL", True)
    assert symmetries(_loss(p, ("pos", "negu", "ridge")), W_A, W_B, nulls) == ("O", False)
    q = p.replace(m=1)
    W_A, W_B = numerics.random_init(q, 0.3, 0)
    assert symmetries(_loss(q, ("pos", "negu", "ridge")), W_A, W_B, nulls) == (None, False)


@pytest.mark.parametrize("m, terms", [(2, ("pos", "negu")), (2, ("pos", "negu", "ridge")),
                                      (1, ("pos", "negu", "ridge"))])
def test_user_terms_converge_certified(user_terms, m, terms):
    """GL(2), O(2) and no symmetry at all: each verified, then the run is certified as for the built-in terms."""
    p = numerics.random_problem([1.0, 0.5], [1.0, 0.6], d_A=4, d_B=4, m=m, noise_A=0.1, noise_B=0.1,
                                seed=0).replace(params={"nu": 0.05})
    tr = numerics.integrate(p, *numerics.random_init(p, 1e-2, 0), 5000.0, terms, grad_tol=GRAD_TOL)
    assert tr.status == "converged" and "certified" in tr.message, tr.message
    f = numerics.flow_function(p, terms)
    assert f.grad_norm(tr.W_A[-1], tr.W_B[-1]) < 1e-5


def test_a_flat_direction_that_is_no_symmetry_is_uncertified(user_terms):
    """At W = 0 with ν = σ₁(C), the Hessian of pos + ridge (m = 1) has a zero eigenvalue, along the top singular
    pair of C: no symmetry (none exists for m = 1), so the stop cannot be certified; with ν above σ₁ it can."""
    from cdyn.numerics._certify import Certifier

    p = numerics.random_problem([1.0, 0.5], [1.0, 0.6], d_A=4, d_B=4, m=1, noise_A=0.1, noise_B=0.1, seed=0)
    sigma1 = float(np.linalg.svd(p.C, compute_uv=False)[0])
    zero = (np.zeros((1, 4)), np.zeros((1, 4)))
    for nu, verdict in ((sigma1, "uncertified"), (sigma1 + 0.1, "converged")):
        q = p.replace(params={"nu": nu})
        terms = ("pos", "negu", "ridge")
        cert = Certifier(q, terms, 1e-3, lambda: numerics._integrate._weight_system(q, terms, *zero, "full").make_jac())
        c = cert(0.0, *zero)
        assert ("converged" if c.ok else "uncertified" if not c.decided else "other") == verdict, c.reason
    assert "zero-curvature direction" in Certifier(p.replace(params={"nu": sigma1}), terms, 1e-3, lambda: None)(
        0.0, *zero).reason
