r"""Integrate the gradient flow with `scipy.integrate.solve_ivp`.

Two terminal events: divergence ($\|W\|_F$ above `max_norm`) and convergence
(a *relative* gradient $\|\nabla L\|_F \le$ `grad_tol` $\cdot\,\|C\|_2(\|W_A\|_F+\|W_B\|_F)$,
which is $O(1)$ at the saddle $W=0$ so it cannot fire there).
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from ._flowfn import flow_function
from ._problem import Problem
from ._trajectory import Trajectory
from ._validate import as_int, as_matrix, as_real

METHODS = ("LSODA", "RK45", "DOP853", "Radau", "BDF", "RK23")


def check_init(p: Problem, W_A0: object, W_B0: object) -> tuple[np.ndarray, np.ndarray]:
    return as_matrix("W_A0", W_A0, p.m, p.d_A), as_matrix("W_B0", W_B0, p.m, p.d_B)


def integrate(
    problem: Problem,
    W_A0: np.ndarray,
    W_B0: np.ndarray,
    t_end: float,
    terms: object = ("pos", "neg"),
    *,
    method: str = "LSODA",
    rtol: float = 1e-8,
    atol: float = 1e-12,
    n_points: int = 401,
    max_norm: float = 1e6,
    grad_tol: float | None = None,
) -> Trajectory:
    """Gradient flow from $(W_{A0}, W_{B0})$ on $[0, t_{end}]$, sampled at `n_points` times."""
    fn = flow_function(problem, terms)
    W_A0, W_B0 = check_init(problem, W_A0, W_B0)
    t_end = as_real("t_end", t_end, low=0.0, strict=True)
    if method not in METHODS:
        raise ValueError(f"method: unknown solver {method!r}; choose from {', '.join(METHODS)}")
    n_points = as_int("n_points", n_points, low=2)
    max_norm = as_real("max_norm", max_norm, low=0.0, strict=True)
    m, dA, dB = problem.m, problem.d_A, problem.d_B
    n = m * dA
    f = fn.vector_field()
    C_scale = float(np.linalg.norm(problem.C, 2)) or 1.0

    def diverged(_t: float, y: np.ndarray) -> float:
        return max_norm - float(np.linalg.norm(y)) if np.all(np.isfinite(y)) else -1.0

    diverged.terminal = True  # type: ignore[attr-defined]
    events = [diverged]
    if grad_tol is not None:
        tol = as_real("grad_tol", grad_tol, low=0.0, strict=True)

        def converged(t: float, y: np.ndarray) -> float:
            g = float(np.linalg.norm(f(t, y)))
            scale = C_scale * (np.linalg.norm(y[:n]) + np.linalg.norm(y[n:]))
            return g - tol * scale

        converged.terminal = True  # type: ignore[attr-defined]
        converged.direction = -1  # type: ignore[attr-defined]
        events.append(converged)

    y0 = np.concatenate([W_A0.ravel(), W_B0.ravel()])
    t_eval = np.linspace(0.0, t_end, n_points)
    with np.errstate(over="ignore", invalid="ignore"):
        sol = solve_ivp(f, (0.0, t_end), y0, method=method, t_eval=t_eval, dense_output=True,
                        events=events, rtol=rtol, atol=atol)
    status, t_stop = "completed", float(sol.t[-1]) if sol.t.size else 0.0
    if sol.status == 1:
        fired = [i for i, te in enumerate(sol.t_events) if te.size]
        status = "diverged" if fired and fired[0] == 0 else "converged"
        t_stop = float(sol.t_events[fired[0]][0])
    elif sol.status == -1:
        status = "failed"
        bad = sol.y.size and not np.all(np.isfinite(sol.y))
        status = "diverged" if bad or (sol.y.size and np.linalg.norm(sol.y[:, -1]) > max_norm / 10) else "failed"
    ts, ys = sol.t, sol.y
    if status in ("diverged", "converged") and (ts.size == 0 or ts[-1] < t_stop):
        ts = np.append(ts, t_stop)
        ys = np.concatenate([ys, sol.sol(t_stop)[:, None]], axis=1)
    W_A = ys[:n].T.reshape(-1, m, dA)
    W_B = ys[n:].T.reshape(-1, m, dB)

    def dense(t: float) -> tuple[np.ndarray, np.ndarray]:
        y = sol.sol(t)
        return y[:n].reshape(m, dA), y[n:].reshape(m, dB)

    return Trajectory(ts, W_A, W_B, status, t_stop, int(sol.nfev), method, fn.terms,
                      message=str(sol.message), dense=dense if sol.sol is not None else None)
