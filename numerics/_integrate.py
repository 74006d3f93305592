r"""Integrate the gradient flow with `scipy.integrate.solve_ivp`.

Two terminal events: divergence ($\|W\|_F$ above `max_norm`) and convergence
(a *relative* gradient $\|\nabla L\|_F \le$ `grad_tol` $\cdot\,\|C\|_2(\|W_A\|_F+\|W_B\|_F)$,
which is $O(1)$ at the saddle $W=0$ so it cannot fire there).

The same flow can be integrated in three forms (`path`), all returning full
$W_A, W_B$ on the time grid; `Trajectory.path` says which one ran:

* `"full"`: the state $W$, right-hand side reading $\Sigma_A, \Sigma_B, C$;
* `"structured"`: the state $W$, right-hand side from thin factors, $O(m\,d\,(r+k))$;
* `"reduced"`: the exact reduced ODE of THEORY §8 (isotropic noise), whose cost does not
  depend on $d$; $W$ is reconstructed exactly from it.

`"auto"` takes the cheapest that applies; `method="auto"` takes LSODA with the analytic
Jacobian when the data condition number $\kappa_C \ge 30$ and DOP853 otherwise (see `_autochoice`).
LSODA runs through `_lsoda_ivp`, `solve_ivp`'s steps without its per-step overhead (same bits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from cdyn import theory

from ._autochoice import auto_method, estimated_cost, is_stiff, norm_C, thread_limit
from ._budget import check_memory, samples_memory
from ._certify import Certifier, Solved, solve_certified
from ._flowfn import flow_function, normalize_terms
from ._jacobian import MAX_DENSE, DenseJacobian
from ._problem import Problem
from ._reduced import ReducedSystem, why_not_reducible
from ._structured import noise_kinds, values_for
from ._trajectory import Trajectory, weights_norm
from ._validate import as_int, as_matrix, as_real

METHODS = ("LSODA", "RK45", "DOP853", "Radau", "BDF", "RK23")
IMPLICIT = ("LSODA", "Radau", "BDF")
PATHS = ("auto", "full", "structured", "reduced")
BACKENDS = ("scipy", "numba")
#: Largest state for which the solver's dense output (`Trajectory.at`) is kept.
MAX_DENSE_OUTPUT = 5000


def check_init(p: Problem, W_A0: object, W_B0: object) -> tuple[np.ndarray, np.ndarray]:
    return as_matrix("W_A0", W_A0, p.m, p.d_A), as_matrix("W_B0", W_B0, p.m, p.d_B)


@dataclass
class OdeSystem:
    """One form of the flow, ready for `solve_ivp`, with the way back to $(W_A, W_B)$."""

    path: str
    make_f: Callable[[], Callable[[float, np.ndarray], np.ndarray]]
    y0: np.ndarray
    weights: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    make_jac: Callable[[], Callable | None]
    cost: float
    n_A: int  # y[:n_A] is view A's block: its norm is ‖W_A‖_F on every path (isometry)
    # (generated code, its bound inner function, the state blocks' shapes): what `backend="numba"` compiles
    numba_spec: Callable[[], tuple] | None = None
    flops: float = 0.0  # of one right-hand side, without the per-call overhead that `cost` adds


def _weight_system(p: Problem, names: tuple[str, ...], W_A0: np.ndarray, W_B0: np.ndarray, path: str) -> OdeSystem:
    fn = flow_function(p, names, path=path)
    m, dA, dB = p.m, p.d_A, p.d_B
    n = m * dA

    def weights(ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return ys[:n].T.reshape(-1, m, dA), ys[n:].T.reshape(-1, m, dB)

    def make_jac():
        if n + m * dB > MAX_DENSE:
            return None
        if path == "structured":
            flow = theory.structured_flow(names, *noise_kinds(p)[0])
        else:
            flow = theory.gradient_flow(names)
        S = theory.symbols
        outs = {"dW_A": flow.dW_A, "dW_B": flow.dW_B}
        try:
            J = DenseJacobian(outs, (S.W_A, S.W_B), {"W_A": (m, dA), "W_B": (m, dB)}, p.dims, _LazyValues(p),
                              S.SYMMETRIC)
        except theory.NotPolynomial:
            return None  # e.g. a user term with an inverse: the solver estimates the Jacobian itself
        return J.solver_jac()

    y0 = np.concatenate([W_A0.ravel(), W_B0.ravel()])
    cost = estimated_cost(fn.rhs_code.flops, fn.rhs_code.n_ops)
    return OdeSystem(path, fn.vector_field, y0, weights, make_jac, cost, n,
                     lambda: (fn.rhs_code, fn._rhs, [(m, dA), (m, dB)]), fn.rhs_code.flops)


class _LazyValues(dict):
    """Problem values fetched on first use (so a structured Jacobian never forms $\\Sigma_A$)."""

    def __init__(self, p: Problem):
        super().__init__()
        self._p = p

    def __missing__(self, key: str) -> object:
        value = values_for(self._p, (key,))[key]
        self[key] = value
        return value


def _reduced_system(p: Problem, names: tuple[str, ...], W_A0: np.ndarray, W_B0: np.ndarray) -> OdeSystem:
    rs = ReducedSystem.build(p, names, W_A0, W_B0)
    cost = estimated_cost(rs.code.flops, rs.code.n_ops)
    n_A = rs.shapes["X_A"][0] * (rs.shapes["X_A"][1] + rs.shapes["Y_A"][1])
    spec = lambda: (rs.code, rs.code.bind(**{k: rs.values[k] for k in rs.code.constants}),  # noqa: E731
                    [rs.shapes[k] for k in ("X_A", "Y_A", "X_B", "Y_B")])
    return OdeSystem("reduced", rs.vector_field, rs.y0, rs.weights, rs.jacobian, cost, n_A, spec, rs.code.flops)


def _short(value: object) -> str:
    """A value for a one-line error: its repr if short, else its type (an array or a deep list)."""
    try:
        text = repr(value) if isinstance(value, (str, int, float, type(None))) else ""
    except RecursionError:
        text = ""
    return text if text and len(text) <= 60 and "\n" not in text else f"of type {type(value).__name__}"


def build_system(p: Problem, names: tuple[str, ...], W_A0: np.ndarray, W_B0: np.ndarray, path: str,
                 compiled: bool = False) -> OdeSystem:
    """The form of the flow `path` asks for (`"auto"`: the cheapest one that applies).

    `compiled`: for the numba backend, whose operations cost no NumPy call overhead, the cheapest
    by flops plus the work linear in the state (DOP853's stage sums: about 20 flops an entry per
    evaluation): at d = 64, r = m = 8 the full form's 12 operations beat the reduced form's 24
    under NumPy, not when compiled."""
    if not isinstance(path, str) or path not in PATHS:
        raise ValueError(f"path: unknown form {_short(path)}; choose from {', '.join(PATHS)}")
    if path == "reduced":
        reason = why_not_reducible(p, names)
        if reason is not None:
            raise ValueError(f"path: the reduced ODE does not apply here: {reason}")
        return _reduced_system(p, names, W_A0, W_B0)
    if path != "auto":
        return _weight_system(p, names, W_A0, W_B0, path)
    options = [_weight_system(p, names, W_A0, W_B0, "full"), _weight_system(p, names, W_A0, W_B0, "structured")]
    if why_not_reducible(p, names) is None:
        options.append(_reduced_system(p, names, W_A0, W_B0))
    if compiled:
        return min(options, key=lambda s: s.flops + 20.0 * s.y0.size)
    return min(options, key=lambda s: s.cost)  # ties keep the first (full)


def integrate(
    problem: Problem,
    W_A0: np.ndarray,
    W_B0: np.ndarray,
    t_end: float,
    terms: object = ("pos", "neg"),
    *,
    method: str = "auto",
    rtol: float = 1e-8,
    atol: float = 1e-12,
    n_points: int = 401,
    max_norm: float = 1e6,
    grad_tol: float | None = None,
    path: str = "auto",
    jac: bool | None = None,
    threads: int | str | None = "auto",
    eq_tol: float | None = None,
    backend: str = "scipy",
    dense_output: bool | None = None,
) -> Trajectory:
    r"""Gradient flow from $(W_{A0}, W_{B0})$ on $[0, t_{end}]$, sampled at `n_points` times.

    `path`: "auto" | "full" | "structured" | "reduced". `method`: "auto" or a `solve_ivp`
    method. `jac`: use the analytic Jacobian (None: for BDF/Radau always, for LSODA on
    stiff instances; it is assembled densely, so only up to `MAX_DENSE` state entries).
    `threads`: BLAS threads ("auto": one for small right-hand sides, None: leave as is).

    With `grad_tol`, status `converged` is *certified* (`_certify`): when the relative gradient
    falls below `grad_tol`, the Jacobian must show no unstable direction and the first-order
    distance to the equilibria must be at most `eq_tol`$\cdot\|W\|$ (default
    $\sqrt{\text{grad\_tol}}$); otherwise the run goes on, and one that reaches `t_end` still on
    a saddle ends `plateau`. `message` gives the reason.

    `backend`: "scipy" (the reference) or "numba": SciPy's DOP853 step for step, compiled with
    the generated right-hand side (`_rk_ivp`), with the same events, certificate, dense output
    and budgets. It runs DOP853 only; with `method="auto"` an instance for which auto picks an
    implicit method (stiff, `LSODA+jac`) runs on SciPy, and `Trajectory.method` says which ran.

    `dense_output`: keep the solver's interpolants (`Trajectory.at`, `t_steps`); None keeps them for
    states up to `MAX_DENSE_OUTPUT` entries. The run is the same to the bit either way: LSODA's
    interpolant is read off the solver's history, and SciPy's explicit RK methods keep one state a
    step and rebuild a step's interpolant when it is read (`_rk_lean`), so `nfev` does not depend
    on it. The numba backend builds DOP853's interpolants as it goes (3 extra right-hand sides a
    step), so there False saves evaluations, and bounds built on `nfev` change.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem: expected numerics.Problem, got {type(problem).__name__}")
    names = normalize_terms(terms)
    W_A0, W_B0 = check_init(problem, W_A0, W_B0)
    t_end = as_real("t_end", t_end, low=0.0, strict=True)
    if not isinstance(path, str) or path not in PATHS:
        raise ValueError(f"path: unknown form {_short(path)}; choose from {', '.join(PATHS)}")
    if not isinstance(method, str) or method != "auto" and method not in METHODS:
        raise ValueError(f"method: unknown solver {_short(method)}; choose from auto, {', '.join(METHODS)}")
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend: unknown backend {_short(backend)}; choose from {', '.join(BACKENDS)}")
    if backend == "numba" and method not in ("auto", "DOP853"):
        raise ValueError(f"backend: numba runs DOP853 only (method={method!r}); use method='DOP853' or 'auto'")
    if jac is not None and not isinstance(jac, bool):
        raise TypeError(f"jac: expected True, False or None, got {type(jac).__name__}")
    if dense_output is not None and not isinstance(dense_output, bool):
        raise TypeError(f"dense_output: expected True, False or None, got {type(dense_output).__name__}")
    n_points = as_int("n_points", n_points, low=2)
    max_norm = as_real("max_norm", max_norm, low=0.0, strict=True)
    tol = None if grad_tol is None else as_real("grad_tol", grad_tol, low=0.0, strict=True)
    eq_tol = (np.sqrt(tol) if tol is not None else 0.0) if eq_tol is None else as_real("eq_tol", eq_tol, low=0.0,
                                                                                        strict=True)
    rtol = as_real("rtol", rtol, low=0.0, strict=True)
    atol = as_real("atol", atol, low=0.0)
    if not (threads is None or isinstance(threads, str) and threads == "auto"
            or isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1):
        raise ValueError(f"threads: expected 'auto', None or an integer >= 1, got {_short(threads)}")
    # The solver's output (n_points × state) and the weights rebuilt from it; on the reduced
    # path the weights are rebuilt on access (Frames), so only the reduced states are kept.
    p = problem
    reducible = path in ("auto", "reduced") and why_not_reducible(p, names) is None
    if not reducible:
        check_memory(samples_memory(2 * n_points, p.m, p.d_A, p.d_B), "integrate")
    if not weights_norm(W_A0, W_B0) <= max_norm:
        return _constant(W_A0, W_B0, np.zeros(1), "diverged", method, names, "none",
                         f"the initial state is above max_norm = {max_norm:g}")
    # Setup is thin LAPACK (SVDs of d×r factors), where a second BLAS thread on a busy
    # 2-core machine was measured 100× slower: one thread.
    with thread_limit(0.0, 1 if threads is not None else None):
        system = build_system(problem, names, W_A0, W_B0, path, backend == "numba")
    if reducible and system.path == "reduced":
        check_memory({"n_points": 8.0 * 2 * n_points * system.y0.size}, "integrate")
    elif reducible:
        check_memory(samples_memory(2 * n_points, p.m, p.d_A, p.d_B), "integrate")
    with np.errstate(over="ignore", invalid="ignore"):
        change = t_end * float(np.linalg.norm(system.make_f()(0.0, system.y0)))
    if change <= np.finfo(float).eps * float(np.linalg.norm(system.y0)):
        # W moves by at most about t_end·‖f(W0)‖, below the rounding of W0: W(t) = W0 in float64.
        # (LSODA does not return from a horizon this short, e.g. t_end = 1e-300.)
        return _constant(W_A0, W_B0, np.linspace(0.0, t_end, n_points), "completed", method, names, system.path,
                         "t_end too short for W to change in float64: W(t) = W0")
    if method == "auto":
        method, use_jac = auto_method(problem, system.y0.size, MAX_DENSE)
        use_jac = use_jac if jac is None else jac
    else:
        use_jac = (method in ("BDF", "Radau") or method == "LSODA" and is_stiff(problem)) if jac is None else jac
    jac_fn = system.make_jac() if use_jac and method in IMPLICIT else None
    ivp = None
    if backend == "numba" and method == "DOP853" and system.numba_spec is not None:
        try:
            from ._rk_ivp import NumbaDOP853  # numba is imported only when asked for
        except ImportError as err:
            raise ValueError(f"backend: numba is not installed ({err}); pip install numba") from None
        ivp = NumbaDOP853(*system.numba_spec())
    certifier = Certifier(problem, names, eq_tol, lambda: _weight_system(problem, names, W_A0, W_B0, "full").make_jac())
    sol = solve_certified(system, t_end, method, jac_fn, rtol, atol, n_points, max_norm, tol, norm_C(problem) or 1.0,
                          threads, certifier,
                          MAX_DENSE_OUTPUT if dense_output is None else (np.inf if dense_output else -1), ivp)
    return _trajectory(sol, system, method + ("+jac" if jac_fn is not None else "") + ("/numba" if ivp else ""), names)


def _constant(W_A0: np.ndarray, W_B0: np.ndarray, t: np.ndarray, status: str, method: str,
              names: tuple[str, ...], path: str, message: str) -> Trajectory:
    """A trajectory that never moved from $W_0$ (no solver step taken)."""
    n = t.size
    return Trajectory(t, np.repeat(W_A0[None], n, 0), np.repeat(W_B0[None], n, 0), status, float(t[-1]), 0,
                      method, names, message=message, path=path, dense=lambda _t: (W_A0.copy(), W_B0.copy()))


#: How SciPy's RK45/DOP853/RK23 report a step size that collapsed.
_RK_STEP_UNDERFLOW = "Required step size is less than spacing between numbers"


def _trajectory(sol: Solved, system: OdeSystem, method: str, names: tuple[str, ...]) -> Trajectory:
    W_A, W_B = system.weights(sol.y)

    def dense(t: float) -> tuple[np.ndarray, np.ndarray]:
        a, b = system.weights(sol.dense(t)[:, None])
        return a[0], b[0]

    message = sol.message
    if sol.status == "failed" and message.startswith(_RK_STEP_UNDERFLOW):  # SciPy's explicit RK methods
        message = (f"no progress at t={sol.t_stop:.4g}: the step size fell below the spacing of floating-point "
                   f"numbers there (a very stiff or ill-scaled problem; solve_ivp: {message})")
    return Trajectory(sol.t, W_A, W_B, sol.status, sol.t_stop, sol.nfev, method, names, message=message,
                      path=system.path, dense=dense if sol.dense is not None else None, t_steps=sol.t_steps)
