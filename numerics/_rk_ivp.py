r"""`backend="numba"`: a drop-in for `solve_ivp(..., method="DOP853")` inside `solve_certified`.

`NumbaDOP853(system)` is called exactly like `scipy.integrate.solve_ivp` (same `t_eval`,
`dense_output`, events, tolerances) plus `state`, the live counters of `solve_certified`
(event threshold and arming, evaluation budget, stall and progress counters, the last
accepted point). The step loop, the events at every accepted step and the `t_eval`
interpolation run compiled (`_rk_template.segment`); Python takes over only when an event
changes sign, and then does what `solve_ivp` does: Brent's method on the step's dense output
with `xtol = rtol = 4ε`, calling the *same* event functions (so their side effects are the
same), and cuts the output at the root. Stops raise through the same code as the SciPy path
(`solve_certified`'s own right-hand side wrapper or divergence event raises `_Stop`), so
statuses and messages match.
"""

from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace
from typing import Callable

import numpy as np
from scipy.integrate._ivp import dop853_coefficients as _dc
from scipy.optimize import brentq

from ._certify import _Stop
from ._rk_kernels import retake, segment
from ._rk_lean import CACHE_STEPS
from ._rk_numba import compile_rhs

_EPS = np.finfo(float).eps
_TAB = (np.ascontiguousarray(_dc.A[:12, :12]), _dc.B.copy(), _dc.C[:12].copy(), _dc.E3.copy(), _dc.E5.copy(),
        np.ascontiguousarray(_dc.D), np.ascontiguousarray(_dc.A[13:]), _dc.C[13:].copy())
_MESSAGES = {0: "The solver successfully reached the end of the integration interval.",
             1: "A termination event occurred.", 2: "Required step size is less than spacing between numbers."}
_INT_MAX = np.iinfo(np.int64).max


def _interp(t: np.ndarray | float, t_old: float, h: float, y_old: np.ndarray, F: np.ndarray) -> np.ndarray:
    """DOP853's dense output on one step (SciPy's `Dop853DenseOutput`), y as (n,) or (n, k)."""
    x = (np.asarray(t, float) - t_old) / h
    y = np.zeros((x.size, y_old.size)) if np.ndim(x) else np.zeros_like(y_old)
    xx = x[:, None] if np.ndim(x) else x
    for i, f in enumerate(F[::-1]):
        y += f
        y *= xx if i % 2 == 0 else 1 - xx
    y += y_old
    return y.T


class DenseSolution:
    """Piecewise dense output over the steps, looked up like SciPy's `OdeSolution` (`ts`: the step ends).

    `chunks` are the stores the compiled loop filled, `(t_old, h, y_old, F or None, count)`, kept as
    they are (joining them would copy them). The loop keeps only each step's start and size; a step's
    7 interpolation rows are rebuilt by `rows(h, y_old)` (`_rk_kernels.retake`: the step taken again)
    when it is read, and the last few are cached: 1 state vector a step instead of 8, and no
    right-hand sides for interpolants nobody reads."""

    def __init__(self, chunks: list[tuple], t_end: float, rows: Callable[[float, np.ndarray], np.ndarray]):
        self._chunks, self._rows = chunks, rows
        self._t = np.concatenate([c[0][:c[4]] for c in chunks])
        self._h = np.concatenate([c[1][:c[4]] for c in chunks])
        self._start = np.cumsum([0] + [c[4] for c in chunks])
        self.ts = np.append(self._t, t_end)
        self.n = chunks[0][2].shape[1]
        self._step = lru_cache(maxsize=CACHE_STEPS)(self._read)  # step s's (y_old, F)

    def _read(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        c = int(np.searchsorted(self._start, s, side="right")) - 1
        i = s - int(self._start[c])
        y_old, F = self._chunks[c][2][i], self._chunks[c][3]
        return y_old, F[i] if F is not None else self._rows(float(self._h[s]), y_old)

    def _one(self, t: float, s: int) -> np.ndarray:
        y_old, F = self._step(s)
        return _interp(t, self._t[s], self._h[s], y_old, F)

    def __call__(self, t: float | np.ndarray) -> np.ndarray:
        seg = np.clip(np.searchsorted(self.ts, t, side="left") - 1, 0, self._t.size - 1)
        if np.ndim(t) == 0:
            return self._one(t, int(seg))
        t = np.asarray(t, float)
        return np.column_stack([self._one(ti, int(s)) for ti, s in zip(t, seg)]) if t.size else np.zeros((self.n, 0))


def _log_size(watch, t0: float | None) -> int:
    """Accepted steps to log before replaying them to the horizon watch: up to its next check, so
    that a stop comes at the same step as on the SciPy path (it checks every `window` entries)."""
    if watch is None:
        return 4096
    ts, w = watch.ts, watch.window
    ignored = 1 if ts and t0 is not None and t0 <= ts[-1] else 0  # the segment's first entry: a time already seen
    return (w - (len(ts) - 1) % w if ts else w + 1) + ignored


class NumbaDOP853:
    """SciPy's DOP853 as `solve_ivp` runs it, compiled with numba around the generated right-hand side."""

    def __init__(self, code, bound, blocks: list[tuple[int, int]]):
        self.fn, self.consts, self.shp = compile_rhs(code, bound, blocks)

    def rows(self, h: float, y_old: np.ndarray) -> np.ndarray:
        """The 7 dense-output rows of the accepted step of size h from y_old (taken again, compiled)."""
        F = np.empty((7, y_old.size))
        retake(self.fn, self.consts, self.shp, h, np.ascontiguousarray(y_old), _TAB[0], _TAB[1], _TAB[5], _TAB[6],
               _TAB[7], F)
        return F

    def rhs(self, y: np.ndarray) -> np.ndarray:
        out = np.empty(np.size(y))
        self.fn(np.ascontiguousarray(y, dtype=float), out, self.consts, self.shp)
        return out

    def __call__(self, fun, t_span, y0, *, method: str = "DOP853", t_eval=None, dense_output: bool = False,
                 events=(), rtol: float = 1e-3, atol: float = 1e-6, state: dict, **unused):
        if method != "DOP853":
            raise ValueError(f"method: the numba backend runs DOP853 only, not {method}")
        S = SimpleNamespace(**state)
        t0, tf = map(float, t_span)
        n = y0.size
        y, f, yold, tmp, seen_y = (np.array(y0, float), np.empty(n), np.empty(n), np.empty(n),
                                   np.array(S.seen[1], float))
        F, K = np.empty((7, n)), np.empty((16, n))
        st = np.zeros(15)
        st[[0, 2, 3, 6, 8, 9, 10, 11, 12]] = (t0, float(S.armed[0]), S.seen[0], S.thr[0] or 0.0, tf, S.t_end,
                                              S.max_norm, rtol, atol)
        has_conv = len(events) > 1
        ct = np.array([S.evals[0], S.stall[0], S.tiny[0], 0, 0, has_conv, S.n, min(S.max_nfev, _INT_MAX),
                       S.max_stall, bool(dense_output), 0, 0], dtype=np.int64)
        t_eval = np.zeros(0) if t_eval is None else np.asarray(t_eval, float)
        ys_out = np.empty((t_eval.size, n))
        cap, chunks = (64 if dense_output else 0), []
        d_t, d_h, d_y = np.empty(cap), np.empty(cap), np.empty((cap, n))
        watch = state.get("watch")
        while True:
            size = _log_size(watch, t0 if ct[10] == 0 else None)  # (t0 is logged on the first call only)
            acc_t, acc_e = np.empty(size), np.empty(size, dtype=np.int64)
            code = segment(self.fn, self.consts, self.shp, y, f, yold, F, K, tmp, st, ct, seen_y, *_TAB,
                           t_eval, ys_out, d_t, d_h, d_y, acc_t, acc_e)
            if watch is not None:  # the horizon watch of `solve_certified`, fed the steps as SciPy's would be
                for t_acc, e_acc in zip(acc_t[:ct[11]], acc_e[:ct[11]]):
                    far = watch.accepted(float(t_acc), int(e_acc))
                    if far is not None:
                        S.seen[:] = [float(st[3]), seen_y.copy()]
                        S.evals[0], S.stall[0], S.tiny[0] = int(ct[0]), int(ct[1]), int(ct[2])
                        raise _Stop(f"{far}; ‖W‖ = {np.linalg.norm(y):.3g} (a stiff flow: its fastest rate grows "
                                    "like ‖W‖², or t_end far beyond the dynamics)")
            ct[11] = 0
            if code == 8:
                continue
            if code != 7:
                break
            chunks.append((d_t, d_h, d_y, None, cap))  # full: keep it, and fill a new one twice its size
            cap, ct[4] = max(cap, min(2 * cap, (1 << 21) // n)), 0  # chunks of up to ~16 MB
            d_t, d_h, d_y = np.empty(cap), np.empty(cap), np.empty((cap, n))
        S.armed[0], S.seen[:] = bool(st[2]), [float(st[3]), seen_y.copy()]
        S.evals[0], S.stall[0], S.tiny[0] = int(ct[0]), int(ct[1]), int(ct[2])
        nd, ie = int(ct[4]), int(ct[3])
        chunks.append((d_t, d_h, d_y, None, nd))
        t_end, status = float(st[0]), {0: 0, 1: 1, 2: -1}.get(code)
        t_events = [np.zeros(0) for _ in events]
        y_events = [np.zeros((0, n)) for _ in events]
        if code in (3, 4):  # stall, budget: `fun` raises the same stop the SciPy path would
            S.evals[0], S.stall[0] = int(ct[0]) - 1, int(ct[1]) - 1
            fun(float(st[0]), y)
        if code == 5:
            raise _Stop(f"the right-hand side overflowed float64 at t={st[0]:.4g} (‖W‖ = {np.linalg.norm(y):.3g})")
        if code == 6:  # no progress: the divergence event raises it
            S.tiny[0], S.seen[0] = int(ct[2]) - 1, float(st[3])
            events[0](float(st[0]), y)
        if code in (3, 4, 6):  # pragma: no cover - the Python side agreed there was no stop
            raise _Stop(f"stopped at t={st[0]:.4g} (numba backend, code {code})")
        if code == 1:
            t_old, h = float(st[7]), float(st[0] - st[7])

            def sol(t):
                return _interp(t, t_old, h, yold, F)

            g, g_new = st[[13, 14]][:len(events)], st[[4, 5]][:len(events)]
            direction = np.array([getattr(e, "direction", 0) for e in events])
            up, down = (g <= 0) & (g_new >= 0), (g >= 0) & (g_new <= 0)
            active = np.nonzero(up & (direction > 0) | down & (direction < 0) | (up | down) & (direction == 0))[0]
            roots = [brentq(lambda t, e=events[i]: e(t, sol(t)), t_old, t_end, xtol=4 * _EPS, rtol=4 * _EPS)
                     for i in active]
            first = int(np.argmin(roots))
            t_end = float(roots[first])
            t_events[active[first]] = np.array([t_end])
            y_events[active[first]] = sol(t_end)[None]
            while ie < t_eval.size and t_eval[ie] <= t_end:
                ys_out[ie] = sol(t_eval[ie])
                ie += 1
            if dense_output:
                chunks.append((np.array([t_old]), np.array([h]), yold[None].copy(), F[None].copy(), 1))
        dense = None
        if dense_output and sum(c[4] for c in chunks):
            dense = DenseSolution(chunks, t_end, self.rows)
        return SimpleNamespace(t=t_eval[:ie].copy(), y=ys_out[:ie].T.copy(), sol=dense, t_events=t_events,
                               y_events=y_events, status=status, message=_MESSAGES[code], nfev=int(ct[0]))
