r"""`solve_ivp(method="LSODA")`, step for step, without its per-step Python overhead.

The claims engine runs hundreds of small LSODA integrations (a few dozen state entries,
thousands of steps each), where `solve_ivp`'s bookkeeping around each step costs as much as
the right-hand side: a NumPy round trip to find active events, two wrappers around every
evaluation, the `OdeSolver.step` and `ode.run` layers. This driver takes the same steps with
the same Fortran solver, set up by SciPy's own `LSODA` class, and reproduces `solve_ivp`'s
loop exactly: the same states, the same `t_eval` values (from the same step interpolants),
the same event roots (SciPy's `handle_events`, brentq on the same interpolant), the same
status and messages. Only the bookkeeping is leaner:

* the Fortran code calls the right-hand side directly (SciPy wraps it in `np.asarray`,
  a no-op for the float64 arrays `solve_certified` returns, and in an `nfev` counter that
  `solve_certified` keeps itself);
* active events are found with float comparisons instead of NumPy arrays (same rule:
  $g \le 0 \le g_{new}$ rising, $g \ge 0 \ge g_{new}$ falling);
* an interpolant is built only when a step holds a `t_eval` point or an event, or when
  dense output is kept (as `solve_ivp` does).

`tests/test_lsoda_ivp.py` checks it against `solve_ivp` to the bit.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy.integrate import OdeSolution
from scipy.integrate._ivp.ivp import MESSAGES, OdeResult
from scipy.integrate._ivp.lsoda import LSODA

from ._ivp_steps import StepOutputs


def solve_lsoda(fun: Callable, t_span: tuple[float, float], y0: np.ndarray, *, t_eval: np.ndarray,
                dense_output: bool, events: Sequence[Callable], rtol: float, atol: float, jac=None,
                **_unused) -> OdeResult:
    """`solve_ivp(fun, t_span, y0, method="LSODA", t_eval=..., events=..., ...)` for a forward span."""
    t0, tf = map(float, t_span)
    t_eval = np.asarray(t_eval)
    options = {"rtol": rtol, "atol": atol} | ({"jac": jac} if jac is not None else {})
    solver = LSODA(fun, t0, y0, tf, vectorized=False, **options)
    lsoda = solver._lsoda_solver
    integrator = lsoda._integrator
    no_jac = lsoda.jac or (lambda: None)
    out = StepOutputs(events, t0, y0, t_eval)
    ti, interpolants = [t0], []
    status, message = None, None
    t_bound = solver.t_bound
    while status is None:
        # OdeSolver.step + LSODA._step_impl, with the Fortran code calling `fun` itself.
        t_old = solver.t
        if solver.n == 0 or t_old == t_bound:
            solver.t_old, solver.t, status = t_old, t_bound, 0
        else:
            itask = integrator.call_args[2]
            integrator.call_args[2] = 5  # one step, never past t_bound
            lsoda._y, lsoda.t = integrator.run(fun, no_jac, lsoda._y, lsoda.t, t_bound, lsoda.f_params,
                                               lsoda.jac_params)
            integrator.call_args[2] = itask
            if not lsoda.successful():
                status, message = -1, "Unexpected istate in LSODA."
                break
            solver.t, solver.y = lsoda.t, lsoda._y.copy()
            solver.t_old = t_old
            if solver.t - t_bound >= 0:
                status = 0
        t, y = solver.t, solver.y
        sol = None
        if dense_output:
            sol = solver.dense_output()
            interpolants.append(sol)
        fired, t, y = out.after_step(solver, t, y, sol)
        if fired:
            status = 1
        if dense_output:
            ti.append(t)
    message = MESSAGES.get(status, message)
    return out.result(sol=OdeSolution(ti, interpolants, alt_segment=True) if dense_output else None,
                      nfev=solver.nfev, njev=integrator.iwork[12], nlu=integrator.iwork[12], status=status,
                      message=message, success=status >= 0)
