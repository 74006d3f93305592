r"""Shared pieces of the claim checks: building instances, tight integration, error bounds.

**Why the solver tolerance is what it is.** `solve_ivp` keeps each step's local error
$e$ within the weighted norm $\sqrt{\tfrac1n\sum_j (e_j/(\mathrm{atol} + \mathrm{rtol}|y_j|))^2} \le 1$,
so $\|e\|_2 \le \sqrt n\,(\mathrm{rtol}\,\|y\|_\infty + \mathrm{atol})$. A mode amplitude
$w_i$ is a projection of $y$, so its relative local error is at most that over $|w_i|$. In
$\log w$ coordinates the decoupled flows do not amplify errors: $d\log X/dt = 2g - 2\lambda\alpha X$
has derivative $-2\lambda\alpha X \le 0$ in $\log X$ (and $0$ without negative pairs). So
the global error of every $\log w_i$ is at most the sum of local ones, bounded by

$$\varepsilon_{\log w} = N_{\mathrm{steps}}\,\max_t \frac{\sqrt n\,(\mathrm{rtol}\,\|y(t)\|_\infty + \mathrm{atol})}{\min_i |w_i(t)|},$$

with $N_{\mathrm{steps}} \le$ the number of RHS evaluations. $\log q_i$ errs by at most $2\varepsilon$,
$\log\kappa$ by $4\varepsilon$. This is the tolerance of every closed-form comparison: it is
computed from the run itself, and a wrong closed form misses it by orders of magnitude.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cdyn import numerics
from cdyn.numerics import DecoupledInstance, Trajectory

RTOL, ATOL = 1e-10, 1e-14
#: Which form of the flow `integrate` runs: "auto", as a user gets it (the fast paths are checked too).
PATH = "auto"


def build_decoupled(spec: dict[str, Any], mu: float = 0.0) -> DecoupledInstance:
    return numerics.decoupled_instance(
        spec["a"], spec["b"], sigma_A=spec["sigma_A"], sigma_B=spec["sigma_B"], extra_d_A=spec["extra_d_A"],
        extra_d_B=spec["extra_d_B"], lam=spec["lam"], mu=mu, seed=spec["seed"])


def integrate_tight(p: numerics.Problem, W_A0: np.ndarray, W_B0: np.ndarray, t_end: float,
                    terms: tuple[str, ...], n_points: int = 201, **kw: Any) -> Trajectory:
    kw.setdefault("path", PATH)
    kw.setdefault("method", "LSODA")
    # LSODA with the dense analytic Jacobian stalled near equilibria of stiff instances here;
    # its finite-difference Jacobian is robust, and these states are small.
    kw.setdefault("jac", False)
    return numerics.integrate(p, W_A0, W_B0, t_end, terms, rtol=RTOL, atol=ATOL, n_points=n_points, **kw)


def mode_series(inst: DecoupledInstance, traj: Trajectory) -> tuple[np.ndarray, np.ndarray]:
    """$(w_A(t), w_B(t))$, arrays of shape (times, modes)."""
    pairs = [inst.modes(a, b) for a, b in zip(traj.W_A, traj.W_B)]
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def log_w_error_bound(inst: DecoupledInstance, traj: Trajectory) -> float:
    r"""$\varepsilon_{\log w}$ of the module docstring for this run."""
    wA, wB = mode_series(inst, traj)
    y_max = np.array([max(np.abs(a).max(), np.abs(b).max()) for a, b in zip(traj.W_A, traj.W_B)])
    amp = np.minimum(np.abs(wA).min(axis=1), np.abs(wB).min(axis=1))
    n = traj.W_A[0].size + traj.W_B[0].size
    local = np.sqrt(n) * (RTOL * y_max + ATOL) / amp
    return float(traj.nfev * local.max())


def kappa_series(p: numerics.Problem, traj: Trajectory) -> np.ndarray:
    return np.array([numerics.kappa(p, a, b) for a, b in zip(traj.W_A, traj.W_B)])


def slack(err: float, tol: float) -> float:
    """1 − err/tol: 1 is exact agreement, 0 is the edge, negative is a violation."""
    return 1.0 - err / tol if tol > 0 else (1.0 if err <= 0 else -np.inf)


def monotone_violation(logk: np.ndarray, increasing: bool = True) -> float:
    """Largest step of log κ in the wrong direction (0 if monotone)."""
    d = np.diff(logk)
    return float(max(0.0, -(d.min() if increasing else -d.max()))) if d.size else 0.0


def rise_and_fall(logk: np.ndarray) -> tuple[float, float]:
    """(largest rise above an earlier value, largest fall below an earlier value) of a series."""
    run_min = np.minimum.accumulate(logk)
    run_max = np.maximum.accumulate(logk)
    return float((logk - run_min).max()), float((run_max - logk).max())
