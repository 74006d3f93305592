r"""`solve_ivp` for SciPy's explicit Runge–Kutta methods, step for step, with *lazy* dense output.

DOP853's dense output costs 3 extra right-hand sides a step (12 + 3 where the step itself
needs 12) and keeps 8 state vectors a step; RK45/RK23 keep their stages. `solve_ivp(...,
dense_output=True)` pays that at every step, although `Trajectory.at` is read at a few times,
if at all: at d = 4096, r = m = 32 it was 1590 of 8192 evaluations and a quarter of the time.

Here each accepted step keeps only its end state. The interpolant of step $i$ is rebuilt on
first access by re-taking that step: the same $(t_i, y_i, f(t_i, y_i), h_i = t_{i+1} - t_i)$ give
the same stages $K$ (the right-hand side is a deterministic function), hence SciPy's own
interpolant bit for bit (`tests/test_rk_lean.py`), at the cost of one step when read. The
`t_eval` values and the event roots need their step's interpolant at once, and get it exactly
as `solve_ivp` builds it.

Otherwise the loop is `solve_ivp`'s (same steps, same `t_eval` values, same events through
SciPy's `handle_events`, same status and messages), without its per-step NumPy round trips.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
from scipy.integrate import DOP853, RK23, RK45, OdeSolution
from scipy.integrate._ivp.ivp import MESSAGES, OdeResult
from scipy.integrate._ivp.rk import rk_step

from ._ivp_steps import StepOutputs

__all__ = ["RK_METHODS", "LazySteps", "solve_rk"]

RK_METHODS = {"DOP853": DOP853, "RK45": RK45, "RK23": RK23}

#: Interpolants kept after a lazy rebuild (a peak search reads the same step many times).
CACHE_STEPS = 32


class LazySteps:
    """The interpolants of a run's accepted steps, each rebuilt from its start state when read."""

    def __init__(self, fun: Callable, method: str, t: list[float], y: list[np.ndarray], t_last: float,
                 wrap: Callable[[], object] | None = None):
        self._fun, self._cls, self._t, self._y, self._wrap = fun, RK_METHODS[method], t, y, wrap
        self.piece = lru_cache(maxsize=CACHE_STEPS)(self._piece)  # step i's interpolant
        ts = np.array(t, float)
        ts[-1] = t_last  # a terminal event ends the last piece at its root, as in `solve_ivp`
        self.solution = OdeSolution(ts, [_Piece(self, i) for i in range(len(t) - 1)])
        self.ts = self.solution.ts

    def __call__(self, t):
        return self.solution(t)

    def _piece(self, i: int):
        """Step $i$'s interpolant (SciPy's, from re-taking the step)."""
        if self._wrap is None:
            return self._rebuild(i)
        with self._wrap():
            return self._rebuild(i)

    def _rebuild(self, i: int):
        t0, t1, y0, y1 = self._t[i], self._t[i + 1], self._y[i], self._y[i + 1]
        h = t1 - t0  # what the solver stepped with: it sets h = t_new - t after choosing t_new
        s = self._cls(self._fun, t0, y0, t1, first_step=abs(h))
        # A solver poised after the step from t0: the stages of the accepted attempt, as `step` left them.
        _, s.f = rk_step(s.fun, t0, y0, s.f, h, s.A, s.B, s.C, s.K)
        s.t_old, s.t, s.y_old, s.y, s.h_previous = t0, t1, y0, y1, h
        return s.dense_output()


class _Piece:
    __slots__ = ("_owner", "_i")

    def __init__(self, owner: LazySteps, i: int):
        self._owner, self._i = owner, i

    def __call__(self, t):
        return self._owner.piece(self._i)(t)


def solve_rk(fun: Callable, t_span: tuple[float, float], y0: np.ndarray, *, method: str, t_eval: np.ndarray,
             dense_output: bool, events: Sequence[Callable], rtol: float, atol: float,
             dense_fun: Callable | None = None, dense_wrap: Callable[[], object] | None = None,
             **_unused) -> OdeResult:
    """`solve_ivp(fun, t_span, y0, method=..., t_eval=..., events=..., dense_output=...)` for a forward span.

    With `dense_output`, `sol` is a `LazySteps` (SciPy's interpolants on access, built with
    `dense_fun`, default `fun`, inside the context `dense_wrap()` returns, e.g. the run's thread limit)."""
    t0, tf = map(float, t_span)
    t_eval = np.asarray(t_eval)
    solver = RK_METHODS[method](fun, t0, y0, tf, rtol=rtol, atol=atol, vectorized=False)
    out = StepOutputs(events, t0, y0, t_eval)
    step_t, step_y = [t0], [solver.y]
    status = None
    while status is None:
        message = solver.step()
        if solver.status == "finished":
            status = 0
        elif solver.status == "failed":
            status = -1
            break
        t, y = solver.t, solver.y
        if dense_output:
            step_t.append(t)
            step_y.append(y)  # a fresh array each step (`rk_step` allocates y_new)
        fired, t, y = out.after_step(solver, t, y, None)
        if fired:
            status = 1
        t_last = t
    message = MESSAGES.get(status, message)
    lazy = None
    if dense_output and len(step_t) > 1:  # as `solve_ivp`, also for a run that failed after some steps
        lazy = LazySteps(dense_fun or fun, method, step_t, step_y, t_last, dense_wrap)
    return out.result(sol=lazy, nfev=solver.nfev, njev=0, nlu=0, status=status, message=message,
                      success=status is not None and status >= 0)
