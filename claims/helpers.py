r"""Helpers for claim authors: horizons, tight integration, stage detection, tolerances from the mathematics.

A check should return a margin whose zero is the claim's edge *and* whose tolerance comes
from the run itself, not from a guessed constant. The pieces the built-in claims use are
re-exported here (the private modules stay where they are):

* **horizon** — `escape_time(p, init_scale)`: $t_0 = \log(1/X_0)/(2\sigma_k(C))$, $X_0 = s^2$, the
  time the weakest learned mode needs to grow from $X_0$ to $O(1)$ at its linear rate $2\sigma_k(C)$;
* **integration** — `integrate_tight` (`solve_ivp`, rtol `RTOL` = 1e-10, atol `ATOL` = 1e-14) and
  `limit_run` (doubling chunks from the escape time until the Newton distance to an
  equilibrium is below 1e-10);
* **stages** — `detect_stages` (peak time, stage rates measured and predicted, limit), `kappa_series`;
* **tolerances** — `log_norm_error_bound` and `log_w_error_bound` (solver error carried to a
  logarithm), `newton_tolerance` (error of a quantity at the end of a run), `reference_floor`
  (floating point of the CCA reference), and margins: `slack`, `monotone_violation`, `rise_and_fall`.

This module registers nothing (`claims.load_all()` imports it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cdyn import numerics
from cdyn.numerics import Problem, Stages, Trajectory

from . import _common
from ._common import ATOL, RTOL, mode_series, monotone_violation, rise_and_fall, slack
from ._limits import eig_lamM, limit_run, newton_tolerance, reference_floor

__all__ = [
    "ATOL", "RTOL", "detect_stages", "eig_lamM", "escape_time", "integrate_tight", "kappa_series", "limit_run",
    "log_norm_error_bound", "log_w_error_bound", "mode_series", "monotone_violation", "newton_tolerance",
    "reference_floor", "rise_and_fall", "slack",
]


def escape_time(p: Problem, init_scale: float) -> float:
    r"""$\log(1/X_0)\,/\,(2\sigma_k(C))$ with $X_0 = s^2$ and $k = \min(m, \operatorname{rank} C)$.

    From a small init of scale $s$ the $k$-th mode grows like $X_0 e^{2\sigma_k t}$ (THEORY §5),
    so this is when the slowest learned mode reaches $O(1)$: the scale of a run's horizon
    (`limit_run` starts its doubling chunks here).
    """
    s = np.linalg.svd(p.C, compute_uv=False)
    k = min(p.m, p.rank_C)
    return float(np.log(1.0 / init_scale**2) / (2 * s[k - 1]))


def detect_stages(p: Problem, traj: Trajectory, terms: tuple[str, ...] | None = None) -> Stages:
    r"""Stage detection on a run (`numerics.detect_stages`): what $\kappa(t)$ did next to the prediction.

    Returns `Stages`: the refined peak time (root of $d\log\kappa/dt$ on the dense output),
    $\kappa$ at start, peak and end, the CCA limit $(\rho_1/\rho_k)^2$, the measured stage
    rates (least-squares slopes over the middle half of each stage) beside the predicted
    $2(g_1 - g_k)$ and $-2g_k$, and the balance time.
    """
    return numerics.detect_stages(p, traj, terms)


def log_norm_error_bound(traj: Trajectory, *, amplification: float = 1.0, rtol: float = RTOL,
                         atol: float = ATOL) -> float:
    r"""A bound on the error of $\log\|W(t)\|_F$ along a run of `integrate_tight`, from the run itself.

    `solve_ivp` keeps each step's local error $e$ within $\|e\|_2 \le \sqrt n\,(\mathrm{rtol}\,\|y\|_\infty
    + \mathrm{atol})$ ($n$ state entries). The linearised flow carries an error made at time $s$ to
    time $t$ multiplied by at most `amplification` $\ge \sup\|\Phi(t, s)\|$ (1 for a contracting
    flow, $e^{\max(0,-h)T}$ for $\dot y = -Hy$ with $h = \lambda_{\min}(H)$). With at most
    `traj.nfev` steps, the global error is at most $\varepsilon\,\min_t\|y(t)\|$ with

    $$\varepsilon = \mathrm{nfev}\cdot\mathrm{amplification}\cdot
      \frac{\sqrt n\,(\mathrm{rtol}\,\max_t\|y(t)\|_\infty + \mathrm{atol})}{\min_t \|y(t)\|_2},$$

    and $|\log\|y + \delta\| - \log\|y\|| \le -\log(1 - \varepsilon) \le 2\varepsilon$ for $\varepsilon \le \tfrac12$.
    Returns $2\varepsilon$ (infinity when $\varepsilon > \tfrac12$: the run cannot resolve the norm).
    """
    norms = np.sqrt(np.sum(traj.W_A**2, axis=(1, 2)) + np.sum(traj.W_B**2, axis=(1, 2)))
    y_max = np.maximum(np.abs(traj.W_A).max(axis=(1, 2)), np.abs(traj.W_B).max(axis=(1, 2)))
    n = traj.W_A[0].size + traj.W_B[0].size
    eps = traj.nfev * amplification * np.sqrt(n) * (rtol * y_max.max() + atol) / max(norms.min(), 1e-300)
    return float(2 * eps) if eps <= 0.5 else float("inf")


def integrate_tight(p: Problem, W_A0: np.ndarray, W_B0: np.ndarray, t_end: float, terms: tuple[str, ...],
                    n_points: int = 201, **kw: Any) -> Trajectory:
    """`numerics.integrate` at rtol `RTOL` = 1e-10 and atol `ATOL` = 1e-14: the run every bound here assumes.

    Defaults: LSODA with a finite-difference Jacobian (robust near equilibria of stiff
    instances) and `path="auto"`; any keyword of `numerics.integrate` overrides them.
    """
    return _common.integrate_tight(p, W_A0, W_B0, t_end, terms, n_points, **kw)


def kappa_series(p: Problem, traj: Trajectory) -> np.ndarray:
    r"""$\kappa(t)$ (singular values of $M = W_A C W_B^\top$, THEORY §4) at every time of a run."""
    return _common.kappa_series(p, traj)


def log_w_error_bound(inst: numerics.DecoupledInstance, traj: Trajectory) -> float:
    r"""A bound on the error of every mode amplitude $\log w_i(t)$ of a decoupled run.

    In $\log w$ coordinates the decoupled flows do not amplify errors, so the global error
    is at most the sum of the local ones:
    $\varepsilon_{\log w} = N_{\rm steps}\max_t \sqrt n(\mathrm{rtol}\|y\|_\infty + \mathrm{atol})/\min_i|w_i(t)|$.
    $\log q_i$ errs by at most $2\varepsilon$, $\log\kappa$ by $4\varepsilon$.
    """
    return _common.log_w_error_bound(inst, traj)

