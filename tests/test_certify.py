"""`converged` means a certified equilibrium, not a small gradient on a plateau (issue 10).

Stiff instances: spectra [1, s] in both views, d = 4, m = 2, no noise, so the data condition
number is κ_C = 1/s² from 1.1e3 to 1e6. Before the certificate, s = 1e-3 reported
`converged at t=1.65e+04` with κ = 6.9e5 against a limit of 1.
"""

from __future__ import annotations

import numpy as np
import pytest

from cdyn import numerics

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
