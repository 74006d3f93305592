r"""Integrate until a *certified* stop: "converged" means near a stable equilibrium, not a small gradient.

The relative-gradient event $\|f(y)\| \le \text{tol}\cdot\|C\|_2(\|W_A\|+\|W_B\|)$ also fires on
plateaus: near a saddle whose unstable direction is weak (data condition $\kappa_C = 10^6$: a
growth rate $\sim 10^{-6}$), the gradient is tiny for a long time. Each time it fires, the
Jacobian $J = \partial f/\partial y$ (derived analytically, `make_jac`; central differences as a
fallback) is checked:

* **saddle / plateau**: an eigenvalue of $J$ with real part $> \tau$ (an unstable direction;
  $\tau$ is the rounding level of $J$). The run goes on; the event fires again only after the
  gradient has risen and fallen (the escape from the saddle);
* **stable but far**: the first-order distance to the equilibrium set, $\|f\|/\gamma$ with $\gamma$
  the smallest $|\mathrm{eig}(J)|$ above $\tau$ (the zero eigenvalues are the $GL(m)$ orbit
  and unseen directions, along which the equilibria extend — see `_limit.py`), exceeds
  `eq_tol`$\cdot\|y\|$. The threshold is lowered to $\tfrac12\,\text{eq\_tol}\,\gamma$ and the run goes on;
* otherwise: `converged`.

A run that reaches $t_{end}$ while still on a saddle ends `plateau`, with the reason. When the test
cannot decide (flat directions of a user term that are not verified symmetries, a state beyond
`MAX_MATRIX_FREE`), the run ends `uncertified` at the stop: never `converged`. The test itself is
`_certificate.Certifier` (dense up to `MAX_CERTIFY` entries, matrix-free `_certify_mf` beyond).

Bounded work: a right-hand side that overflows, a step size that collapses, the evaluation budget,
and `_budget.HorizonWatch` (the step sizes project more evaluations to $t_{end}$ than 100× the
budget: a stiff flow at an explicit method's stability limit, or $t_{end} = 10^{300}$) end the run
`failed` with the reason, at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.integrate import solve_ivp

from ._autochoice import thread_limit
from ._budget import HorizonWatch, nfev_limit
from ._certificate import MAX_CERTIFY, MAX_MATRIX_FREE, Certificate, Certifier, symmetry_tangents, tangents
from ._lsoda_ivp import solve_lsoda
from ._rk_lean import RK_METHODS, solve_rk

__all__ = ["MAX_CERTIFY", "MAX_MATRIX_FREE", "Certificate", "Certifier", "Solved", "solve_certified",
           "symmetry_tangents", "tangents"]

#: Uncertified stops allowed before the run gives up on certifying and goes on to t_end.
MAX_RESTARTS = 25


def slowest_time(p) -> float:
    r"""$1/g_k$, $g_k$ the $k$-th singular value of $C = A\Sigma_z B^\top$, $k = \min(m, \mathrm{rank}\,C)$: the
    slowest rate of the flow's signal modes (from thin factors; inf when $C = 0$)."""
    _, RA = np.linalg.qr(p.A)
    _, RB = np.linalg.qr(p.B)
    s = np.linalg.svd(RA @ p.Sigma_z @ RB.T, compute_uv=False)
    s = s[s > 1e-12 * s.max(initial=0.0)] if s.size and s.max() > 0 else s[:0]
    return 1.0 / float(s[min(p.m, s.size) - 1]) if s.size else np.inf


class _Stop(Exception):
    """Raised inside the right-hand side to end a run that cannot make progress."""


@dataclass
class Solved:
    """The stitched result of one or more `solve_ivp` segments."""

    t: np.ndarray
    y: np.ndarray
    status: str
    t_stop: float
    nfev: int
    message: str
    dense: Callable[[float], np.ndarray] | None
    t_steps: np.ndarray | None


def solve_certified(system, t_end: float, method: str, jac_fn, rtol: float, atol: float, n_points: int,
                    max_norm: float, tol: float | None, C_scale: float, threads, certifier: Certifier,
                    dense_limit: int, ivp: Callable | None = None) -> Solved:
    """`solve_ivp` with divergence and (certified) convergence events, restarted after each uncertified stop."""
    f_raw, n = system.make_f(), system.n_A
    last: list = [None, None, None]
    thr = [None if tol is None else tol * C_scale]
    armed, evals, seen, stall, tiny = [True], [0], [0.0, system.y0], [0], [0]
    max_nfev = nfev_limit()
    # Evaluations without an accepted step before the step size counts as collapsed (several
    # finite-difference Jacobians of the state fit in it).
    max_stall = max(20_000, 10 * system.y0.size)
    watch = HorizonWatch(t_end, reach=np.inf if tol is None else 1e4 * slowest_time(certifier._p))
    isfinite, inf = np.isfinite, np.inf
    reuse = tol is not None  # only the convergence event reads `last`

    def f(t: float, y: np.ndarray) -> np.ndarray:
        # Bounded work: a collapsing step size (LSODA at t_end = 1e-300, λ = 1e308, a huge init on
        # the equilibrium manifold) or an overflowing right-hand side ends the run, not the process.
        evals[0] += 1
        stall[0] += 1
        if stall[0] > max_stall:
            raise _Stop(f"no step accepted in {max_stall} right-hand-side evaluations at t={seen[0]:.4g}: the "
                        "step size collapsed (a very stiff or ill-scaled problem)")
        if evals[0] > max_nfev:
            raise _Stop(f"stopped after {max_nfev:.3g} right-hand-side evaluations at t={seen[0]:.4g}: the "
                        "evaluation budget is spent before t_end (a stiff flow or a collapsed step size; raise the "
                        "budget with numerics.budget(max_nfev=...) / --max-steps)")
        out = f_raw(t, y)
        # A finite ‖out‖² means every entry is finite (a nan or inf entry makes it nan or inf): one
        # dot product instead of the elementwise test, which runs only when the sum is not finite.
        if not out.dot(out) < inf and not isfinite(out).all() and isfinite(y).all():
            raise _Stop(f"the right-hand side overflowed float64 at t={t:.4g} (‖W‖ = {np.linalg.norm(y):.3g})")
        if reuse:
            last[:] = (t, y.copy(), out)
        return out

    def rhs_at(t: float, y: np.ndarray) -> np.ndarray:
        # Explicit RK methods evaluate f at the accepted (t, y) (first-same-as-last), which
        # is exactly where the event asks: reuse it instead of paying a second evaluation.
        if last[0] == t and np.array_equal(last[1], y):
            return last[2]
        return f_raw(t, y)

    def diverged(t: float, y: np.ndarray) -> float:
        # Accepted steps that no longer advance t (below 1e-12 of the horizon, 10⁴ in a row).
        tiny[0] = tiny[0] + 1 if t - seen[0] < 1e-12 * t_end else 0
        if tiny[0] > 10_000:
            raise _Stop(f"no progress at t={t:.4g}: 10⁴ accepted steps in a row each below 1e-12·t_end, so t_end "
                        "cannot be reached (the step size collapsed, or t_end is far beyond the dynamics)")
        seen[:] = (t, y.copy())  # the last point of the solution the solver reported
        stall[0] = 0
        far = watch.accepted(t, evals[0])
        if far is not None:
            raise _Stop(f"{far}; ‖W‖ = {np.linalg.norm(y):.3g} (a stiff flow: its fastest rate grows like ‖W‖², "
                        "or t_end far beyond the dynamics)")
        if y.flags.c_contiguous:  # np.linalg.norm(y) is sqrt(y·y) on contiguous 1-D data: the same bits
            sq = y.dot(y)
            if sq < inf:  # and every entry is finite
                return max_norm - math.sqrt(sq)
        return max_norm - float(np.linalg.norm(y)) if isfinite(y).all() else -1.0

    def converged(t: float, y: np.ndarray) -> float:
        g = float(np.linalg.norm(rhs_at(t, y)))
        level = thr[0] * (np.linalg.norm(y[:n]) + np.linalg.norm(y[n:]))
        # After a stop on a saddle the event is disarmed (a constant > 0, so no crossing) until
        # the gradient has risen to twice the threshold: the escape, not solver noise on the
        # same plateau (which would stop the run again at once).
        armed[0] = armed[0] or g > 2.0 * level
        return g - level if armed[0] else 1.0

    diverged.terminal = True  # type: ignore[attr-defined]
    converged.terminal = True  # type: ignore[attr-defined]
    converged.direction = -1  # type: ignore[attr-defined]
    events = [diverged] + ([converged] if tol is not None else [])
    kwargs = {"jac": jac_fn} if jac_fn is not None else {}
    if ivp is not None:  # a compiled stand-in for solve_ivp (`_rk_ivp`) runs the same events from these counters
        kwargs["state"] = {"thr": thr, "armed": armed, "evals": evals, "seen": seen, "stall": stall, "tiny": tiny,
                           "max_nfev": max_nfev, "max_stall": max_stall, "max_norm": max_norm, "t_end": t_end, "n": n,
                           "watch": watch}
    # Dense output keeps a state a step (explicit RK, rebuilt lazily), LSODA's history or numba's 8 vectors a
    # step, which for a full state of m·d = 10⁵ entries is gigabytes: only for small states.
    dense = system.y0.size <= dense_limit
    grid = np.linspace(0.0, t_end, n_points)
    t0, y0, ts, ys, sols, starts = 0.0, system.y0, [], [], [], []

    def check(t: float, y: np.ndarray) -> Certificate:
        W_A, W_B = system.weights(y[:, None])
        # Thin products and small decompositions: a second BLAS thread on a busy machine was measured 10-100×
        # slower (d = 1024: 106 s for the matrix-free certificate with two threads under load).
        with thread_limit(0.0, 1 if threads is not None else None):
            return certifier(t, W_A[0], W_B[0])

    status, t_stop, reason, cert = "completed", t_end, "", None
    for restart in range(MAX_RESTARTS + 1):
        t_eval = grid[grid >= t0] if restart == 0 else grid[grid > t0]
        try:
            with np.errstate(over="ignore", invalid="ignore"), thread_limit(system.cost, threads):
                # Forward LSODA and explicit RK: the same steps as solve_ivp without its per-step overhead
                # (`_lsoda_ivp`, `_rk_lean`; the latter rebuilds a step's interpolant only when it is read).
                driver = ivp or (solve_lsoda if method == "LSODA" and t_end > t0
                                 else solve_rk if method in RK_METHODS and t_end > t0 else solve_ivp)
                if driver is solve_rk:
                    kwargs.update(dense_fun=f_raw, dense_wrap=lambda: thread_limit(system.cost, threads))
                sol = driver(f, (t0, t_end), y0, method=method, t_eval=t_eval, dense_output=dense,
                             events=events, rtol=rtol, atol=atol, **kwargs)
        except _Stop as stop:  # keep what was reached: the segment's start and the last reported point
            t_stop, y_last = float(seen[0]), np.asarray(seen[1], float)
            ts.append(np.array([t0, t_stop]))
            ys.append(np.column_stack([y0, y_last]))
            sols.append(None)
            status, reason = "failed", str(stop)
            break
        sol.t, sol.y = np.asarray(sol.t, float), np.asarray(sol.y, float).reshape(y0.size, -1)  # [] for no t_eval
        ts.append(sol.t)
        ys.append(sol.y)
        sols.append(sol.sol)
        starts.append(t0)
        t_stop = float(sol.t[-1]) if sol.t.size else t0
        if sol.status == -1:
            bad = sol.y.size and not np.all(np.isfinite(sol.y))
            status = "diverged" if bad or (sol.y.size and np.linalg.norm(sol.y[:, -1]) > max_norm / 10) else "failed"
            reason = str(sol.message)
            break
        if sol.status != 1:
            status, reason = "completed", reason or str(sol.message)
            break
        fired = [i for i, te in enumerate(sol.t_events) if te.size][0]
        t_stop, y_stop = float(sol.t_events[fired][0]), sol.y_events[fired][0]
        if not sol.t.size or sol.t[-1] < t_stop:
            ts.append(np.array([t_stop]))
            ys.append(y_stop[:, None])
        if fired == 0:
            status, reason = "diverged", f"‖W‖ reached max_norm = {max_norm:g}"
            break
        cert = check(t_stop, y_stop)
        reason = cert.reason
        if cert.ok:
            status = "converged"
            break
        if not cert.decided:
            status = "uncertified"
            break
        if cert.stable:  # aim the next stop at the distance the certificate asks for
            thr[0] = min(thr[0], 0.5 * certifier.eq_tol * cert.gamma)
        armed[0] = cert.stable
        t0, y0 = t_stop, y_stop
    if status == "completed" and cert is not None and not cert.ok:
        # Past a saddle the gradient may never rise enough to re-arm the event: judge the end point.
        end = check(t_stop, ys[-1][:, -1])
        status = ("converged" if end.ok else "plateau" if not end.stable else "uncertified" if not end.decided
                  else "completed")
        reason = (f"reached t_end on a saddle/plateau: {end.reason}" if not end.stable
                  else f"{end.reason} (after an earlier stop: {reason})" if end.ok
                  else f"reached t_end before convergence could be certified: {end.reason}")
    t_all, y_all = np.concatenate(ts), np.concatenate(ys, axis=1)
    keep = np.concatenate([[True], np.diff(t_all) > 0]) if t_all.size else np.zeros(0, bool)
    dense_fn = None
    if all(s is not None for s in sols):
        starts_arr = np.array(starts)

        def dense_fn(t: float) -> np.ndarray:
            return sols[max(0, int(np.searchsorted(starts_arr, t, side="right")) - 1)](t)

    steps = np.concatenate([s.ts for s in sols]) if dense_fn is not None else None
    return Solved(t_all[keep], y_all[:, keep], status, t_stop, evals[0], reason, dense_fn,
                  None if steps is None else np.unique(steps))
