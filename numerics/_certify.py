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

A run that reaches $t_{end}$ while still on a saddle ends `plateau`, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.integrate import solve_ivp

from ._autochoice import thread_limit
from ._budget import nfev_limit

#: Largest $m(d_A+d_B)$ whose Jacobian is eigen-decomposed for the certificate (about 1 s here).
MAX_CERTIFY = 1000
#: Uncertified stops allowed before the run gives up on certifying and goes on to t_end.
MAX_RESTARTS = 25


@dataclass(frozen=True)
class Certificate:
    ok: bool
    stable: bool
    top: float  # largest eigenvalue of J = -∇²L
    gamma: float  # smallest |eigenvalue| of a curved (non-flat) direction
    distance: float  # Newton step ‖J⁺f‖ on the curved directions
    reason: str


def symmetry_tangents(W_A: np.ndarray, W_B: np.ndarray, terms: tuple[str, ...],
                      nulls: tuple[np.ndarray, np.ndarray]) -> np.ndarray | None:
    r"""Directions along which the loss is exactly flat (columns; None: not known for these terms).

    `pos`, `neg` depend on $W$ only through $W_A^\top W_B$, $W_A\Sigma_A$, $W_B\Sigma_B$: the
    $GL(m)$ orbit $(\xi W_A, -\xi^\top W_B)$ and moves of a row along $\ker\Sigma_A$ or $\ker\Sigma_B$.
    With weight decay only the $O(m)$ orbit $(\xi W_A, \xi W_B)$, $\xi^\top = -\xi$, is left."""
    m, dA, dB = W_A.shape[0], W_A.shape[1], W_B.shape[1]
    vecs = []
    E = np.eye(m)
    if set(terms) <= {"pos", "neg"}:
        for i in range(m):
            for j in range(m):
                xi = np.outer(E[i], E[j])
                vecs.append(np.concatenate([(xi @ W_A).ravel(), (-xi.T @ W_B).ravel()]))
        for k, (null, d) in enumerate(zip(nulls, (dA, dB))):
            for n in null.T:
                for i in range(m):
                    V = [np.zeros((m, dA)), np.zeros((m, dB))]
                    V[k][i] = n
                    vecs.append(np.concatenate([V[0].ravel(), V[1].ravel()]))
    elif set(terms) <= {"pos", "neg", "wd"}:
        for i in range(m):
            for j in range(i + 1, m):
                xi = np.outer(E[i], E[j]) - np.outer(E[j], E[i])
                vecs.append(np.concatenate([(xi @ W_A).ravel(), (xi @ W_B).ravel()]))
    else:
        return None
    return np.array(vecs).T if vecs else np.zeros((m * (dA + dB), 0))


class Certifier:
    """The test of the module docstring, on the full state $(W_A, W_B)$ whatever form was integrated."""

    def __init__(self, problem, names: tuple[str, ...], eq_tol: float, make_full_jac: Callable):
        from ._flowfn import flow_function
        from ._metrics import rank_of

        self.fn, self.names, self.eq_tol, self._make = flow_function(problem, names), names, eq_tol, make_full_jac
        self.size = problem.m * (problem.d_A + problem.d_B)
        self._p, self._jac, self._nulls, self._rank_of = problem, None, None, rank_of

    def _null(self, S: np.ndarray) -> np.ndarray:
        w, V = np.linalg.eigh(S)
        return V[:, : S.shape[0] - self._rank_of(S)]

    def __call__(self, t: float, W_A: np.ndarray, W_B: np.ndarray) -> Certificate:
        if self.size > MAX_CERTIFY:
            return Certificate(True, True, np.nan, np.nan, np.nan, f"converged at t={t:.4g} (not certified: "
                               f"a state of {self.size} entries is too large for the Jacobian test)")
        if self._jac is None:
            self._jac = self._make() or False
            self._nulls = (self._null(self._p.Sigma_A), self._null(self._p.Sigma_B))
        dA, dB = self.fn(W_A, W_B)
        f = np.concatenate([np.ravel(dA), np.ravel(dB)])
        y = np.concatenate([W_A.ravel(), W_B.ravel()])
        if self._jac:
            J, rel = np.asarray(self._jac(t, y), dtype=float), 1e3 * y.size * np.finfo(float).eps
        else:  # no derived Jacobian (e.g. a user term that is not polynomial): central differences
            field, h = self.fn.vector_field(), np.cbrt(np.finfo(float).eps) * max(1.0, float(np.abs(y).max()))
            J = np.column_stack([(field(t, y + h * e) - field(t, y - h * e)) / (2 * h) for e in np.eye(y.size)])
            rel = np.sqrt(np.finfo(float).eps)
        J = (J + J.T) / 2  # -∇²L: symmetric up to rounding
        w, V = np.linalg.eigh(J)
        tau = rel * float(np.abs(w).max(initial=0.0))
        T = symmetry_tangents(W_A, W_B, self.names, self._nulls)
        outside = np.ones(w.size)
        if T is not None and T.shape[1]:
            # J vanishes on the flat directions only at a critical point (J(ξ·y) = ξ·f(y)), and
            # near a rank-deficient W that leakage is not small: an eigenvector counts as flat when
            # it lies mostly in their span, whatever its eigenvalue.
            U, sv, _ = np.linalg.svd(T, full_matrices=False)
            Q = U[:, sv > 1e-10 * sv.max(initial=0.0)]
            outside = np.linalg.norm(V - Q @ (Q.T @ V), axis=0)
        curved = (np.abs(w) > tau) & (outside > 0.5)
        w, V = w[curved], V[:, curved]
        top = float(w.max(initial=-np.inf))
        if top > tau:
            return Certificate(False, False, top, np.nan, np.inf,
                               f"saddle/plateau at t={t:.4g}: the Hessian has an unstable direction (eigenvalue "
                               f"{top:.3g} of -∇²L, off the symmetry directions, above rounding {tau:.1e}) while the "
                               "relative gradient is below grad_tol")
        gamma = float(np.abs(w).min(initial=np.inf))
        delta = V @ ((V.T @ f) / w)
        dist, scale = float(np.linalg.norm(delta)), float(np.linalg.norm(y))
        if dist > self.eq_tol * scale:
            return Certificate(False, True, top, gamma, dist,
                               f"stable but not yet close at t={t:.4g}: Newton distance {dist:.3g} > "
                               f"eq_tol·‖W‖ = {self.eq_tol * scale:.3g} (γ = {gamma:.3g})")
        return Certificate(True, True, top, gamma, dist,
                           f"converged at t={t:.4g}, certified: no unstable direction (top eigenvalue {top:.2g}), "
                           f"Newton distance {dist:.3g} <= eq_tol·‖W‖ = {self.eq_tol * scale:.3g}")


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

    def f(t: float, y: np.ndarray) -> np.ndarray:
        # Bounded work: a collapsing step size (LSODA at t_end = 1e-300, λ = 1e308, a huge init on
        # the equilibrium manifold) or an overflowing right-hand side ends the run, not the process.
        evals[0] += 1
        stall[0] += 1
        if stall[0] > max_stall:
            raise _Stop(f"no step accepted in {max_stall} right-hand-side evaluations at t={seen[0]:.4g}: the "
                        "step size collapsed (a very stiff or ill-scaled problem)")
        if evals[0] > max_nfev:
            raise _Stop(f"stopped after {max_nfev:.3g} right-hand-side evaluations at t={seen[0]:.4g}: the step "
                        "size collapsed (raise the budget with numerics.budget(max_nfev=...) / --max-steps)")
        out = f_raw(t, y)
        if not np.all(np.isfinite(out)) and np.all(np.isfinite(y)):
            raise _Stop(f"the right-hand side overflowed float64 at t={t:.4g} (‖W‖ = {np.linalg.norm(y):.3g})")
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
        return max_norm - float(np.linalg.norm(y)) if np.all(np.isfinite(y)) else -1.0

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
                           "max_nfev": max_nfev, "max_stall": max_stall, "max_norm": max_norm, "t_end": t_end, "n": n}
    # Dense output keeps every step's interpolant (DOP853: 7 state vectors a step), which
    # for a full state of m·d = 10⁵ entries is gigabytes: only for small states.
    dense = system.y0.size <= dense_limit
    grid = np.linspace(0.0, t_end, n_points)
    t0, y0, ts, ys, sols, starts = 0.0, system.y0, [], [], [], []

    def check(t: float, y: np.ndarray) -> Certificate:
        W_A, W_B = system.weights(y[:, None])
        return certifier(t, W_A[0], W_B[0])

    status, t_stop, reason, cert = "completed", t_end, "", None
    for restart in range(MAX_RESTARTS + 1):
        t_eval = grid[grid >= t0] if restart == 0 else grid[grid > t0]
        try:
            with np.errstate(over="ignore", invalid="ignore"), thread_limit(system.cost, threads):
                sol = (ivp or solve_ivp)(f, (t0, t_end), y0, method=method, t_eval=t_eval, dense_output=dense,
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
        if cert.stable:  # aim the next stop at the distance the certificate asks for
            thr[0] = min(thr[0], 0.5 * certifier.eq_tol * cert.gamma)
        armed[0] = cert.stable
        t0, y0 = t_stop, y_stop
    if status == "completed" and cert is not None and not cert.ok:
        # Past a saddle the gradient may never rise enough to re-arm the event: judge the end point.
        end = check(t_stop, ys[-1][:, -1])
        status = "converged" if end.ok else "plateau" if not end.stable else "completed"
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
