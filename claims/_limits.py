r"""Tolerances for quantities at the end of a run, from the Newton estimate of the limit.

`numerics.equilibrium_distance` returns $y^\star = y - J^{+}f(y)$, the nearest equilibrium
to second order in $\|y - y^\star\|$. For any smooth quantity $\phi$ of the weights
(eigenvalues of $\lambda M$, $\kappa$, a principal angle), $|\phi(y) - \phi(y^{\rm true})|
= |\phi(y) - \phi(y^\star)| + O(\|\delta\|^2)$; doubling the first-order term covers the
remainder while $\|\delta\| \ll 1$. Floating point adds a floor: the CCA reference goes
through $\Sigma^{-1/2}$, whose relative error is $O(\epsilon\,\mathrm{cond}\,\Sigma)$, and the
eigenvalues of a non-normal $M$ err by $O(\epsilon\,\mathrm{cond}(X))$ ($X$ its eigenvectors,
Bauer–Fike). The factor 16 covers the handful of such operations in each quantity.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from cdyn import numerics
from cdyn.numerics import EquilibriumDistance, Problem

from ._common import PATH

EPS = float(np.finfo(float).eps)


def reference_floor(p: Problem) -> float:
    """Relative floating-point error of the whitened-SVD reference (canonical correlations)."""
    return 16 * EPS * (np.linalg.cond(p.Sigma_A) + np.linalg.cond(p.Sigma_B))


def eig_lamM(p: Problem, W_A: np.ndarray, W_B: np.ndarray) -> tuple[np.ndarray, float]:
    """Eigenvalues of λM, largest first (real parts), and the condition of its eigenvectors."""
    w, X = np.linalg.eig(p.lam * numerics.feature_covariance(p, W_A, W_B))
    order = np.argsort(-w.real)
    return w.real[order], float(np.linalg.cond(X))


def newton_tolerance(phi: Callable[[np.ndarray, np.ndarray], float | np.ndarray], W_A: np.ndarray,
                     W_B: np.ndarray, ed: EquilibriumDistance) -> np.ndarray:
    """2 |φ(y) − φ(y*)|: the error of φ at the end of the run, to first order, doubled."""
    return 2 * np.abs(np.asarray(phi(W_A, W_B)) - np.asarray(phi(ed.W_A_star, ed.W_B_star)))


def limit_run(p: Problem, W_A0: np.ndarray, W_B0: np.ndarray, init_scale: float,
              terms: tuple[str, ...] = ("pos", "neg")) -> dict[str, Any]:
    r"""Run to the limit: doubling chunks from the escape time $\log(1/X_0)/(2\sigma_{\min}(C))$."""
    s = np.linalg.svd(p.C, compute_uv=False)
    k = min(p.m, p.rank_C)
    t0 = float(np.log(1.0 / init_scale**2) / (2 * s[k - 1]))
    # rtol 1e-8 suffices: the end state's accuracy is judged by the Newton step, not by the solver.
    W_A, W_B, ed, t, nfev = numerics.integrate_to_equilibrium(
        p, W_A0, W_B0, terms, t_chunk=t0, target=1e-10, rtol=1e-8, atol=1e-14, method="LSODA", jac=False,
        path=PATH, dense_output=False)
    return {"W_A": W_A, "W_B": W_B, "ed": ed, "t": t, "nfev": nfev}
