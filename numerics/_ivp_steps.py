r"""What `solve_ivp` does after each accepted step, shared by the lean drivers `_lsoda_ivp` and `_rk_lean`.

After a step from `t_old` to `t`: the events are evaluated at $(t, y)$; those whose sign changed
the way their `direction` asks are *active*, and SciPy's own `handle_events` finds their roots
by Brent's method on the step's interpolant; a terminal one cuts the step at its root. Then the
`t_eval` points the (possibly cut) step covers are read off the same interpolant. The
interpolant is built only when one of these needs it. The order of the event calls is
`solve_ivp`'s, which matters: `solve_certified`'s events have side effects (progress counters).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy.integrate._ivp.ivp import OdeResult, handle_events, prepare_events


def _active(g: list[float], g_new: list[float], direction: np.ndarray) -> list[int]:
    """`scipy.integrate._ivp.ivp.find_active_events` on Python floats."""
    out = []
    for i, (a, b) in enumerate(zip(g, g_new)):
        up, down = a <= 0 and b >= 0, a >= 0 and b <= 0
        d = direction[i]
        if up and d > 0 or down and d < 0 or (up or down) and d == 0:
            out.append(i)
    return out


class StepOutputs:
    """Events and `t_eval` values of a run, filled step by step as `solve_ivp` fills them."""

    def __init__(self, events: Sequence[Callable], t0: float, y0: np.ndarray, t_eval: np.ndarray):
        self.events, self.max_events, self.event_dir = prepare_events(events)
        self.event_count = np.zeros(len(self.events))
        self.g = [event(t0, y0) for event in self.events]
        self.t_events: list[list[float]] = [[] for _ in self.events]
        self.y_events: list[list[np.ndarray]] = [[] for _ in self.events]
        self.t_eval, self.i = np.asarray(t_eval), 0
        self.ts: list[np.ndarray] = []
        self.ys: list[np.ndarray] = []

    def after_step(self, solver, t: float, y: np.ndarray, sol) -> tuple[bool, float, np.ndarray]:
        """Events and `t_eval` points of the step that ended at (t, y); `sol`: its interpolant if built.
        Returns (a terminal event fired, the step's end: its root if so, y there)."""
        terminate = False
        g_new = [event(t, y) for event in self.events]
        active = _active(self.g, g_new, self.event_dir)
        if active:
            if sol is None:
                sol = solver.dense_output()
            active_arr = np.asarray(active, dtype=np.intp)
            self.event_count[active_arr] += 1
            root_indices, roots, terminate = handle_events(sol, self.events, active_arr, self.event_count,
                                                           self.max_events, solver.t_old, t)
            for e, te in zip(root_indices, roots):
                self.t_events[e].append(te)
                self.y_events[e].append(sol(te))
            if terminate:
                t = roots[-1]
                y = sol(t)
        self.g = g_new
        n_eval = self.t_eval.shape[0]
        i_new = int(np.searchsorted(self.t_eval, t, side="right")) if self.i < n_eval else self.i
        if i_new > self.i:
            if sol is None:
                sol = solver.dense_output()
            step = self.t_eval[self.i:i_new]
            self.ts.append(step)
            self.ys.append(sol(step))
            self.i = i_new
        return bool(terminate), t, y

    def result(self, **fields) -> OdeResult:
        """`solve_ivp`'s result: the `t_eval` values and the events, with `fields` (status, sol, nfev, ...)."""
        return OdeResult(t=np.hstack(self.ts) if self.ts else [], y=np.hstack(self.ys) if self.ys else [],
                         t_events=[np.asarray(te) for te in self.t_events],
                         y_events=[np.asarray(ye) for ye in self.y_events], **fields)
