r"""Population gradient descent $W \leftarrow W - \eta\nabla L$ on the flow's time axis $t = k\eta$.

GD steps whichever exact form of the flow `integrate` would take (`path`, default "auto":
the cheapest): the full form, the structured one (thin factors, no $d\times d$ matrix), or,
under isotropic noise, the reduced state $(X_A, Y_A, X_B, Y_B)$ of THEORY §8. The last is
exact for GD, not only for the flow: $\dot W_A = \dot X_A U_A^\top + \dot Y_A N_A^\top$ holds
as an identity in the state, so one step of $(X, Y)$ by the reduced right-hand side is
one step of $W$ (`theory._reduced.reduced_gd_step`). The map $(X, Y) \mapsto W$ is an
isometry, so the divergence test on $\|y\|$ is the one on $\|W\|_F$.
"""

from __future__ import annotations

import numpy as np

from ._budget import check_memory, gd_steps, samples_memory
from ._flowfn import normalize_terms
from ._integrate import build_system, check_init
from ._problem import Problem
from ._trajectory import Trajectory, weights_norm
from ._validate import as_int, as_real

GD_PATHS = ("auto", "full", "structured", "reduced")


def gradient_descent(
    problem: Problem,
    W_A0: np.ndarray,
    W_B0: np.ndarray,
    eta: float,
    t_end: float,
    terms: object = ("pos", "neg"),
    *,
    n_points: int = 401,
    max_norm: float = 1e6,
    path: str = "auto",
) -> Trajectory:
    """$\\mathrm{round}(t_{end}/\\eta)$ steps; about `n_points` snapshots, always including the last.

    `path` is the form stepped ("auto": the cheapest that applies; `Trajectory.path` says
    which ran). On the reduced path the snapshots are reduced states and `W_A`, `W_B` are
    rebuilt on access (`Frames`). A start above `max_norm` is `diverged` at $t = 0$; a step
    count or stored snapshots beyond the budget (`numerics.budget`) are refused with a
    ValueError before the first step."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem: expected numerics.Problem, got {type(problem).__name__}")
    names = normalize_terms(terms)
    W_A, W_B = check_init(problem, W_A0, W_B0)
    eta = as_real("eta", eta, low=0.0, strict=True)
    t_end = as_real("t_end", t_end, low=0.0, strict=True)
    max_norm = as_real("max_norm", max_norm, low=0.0, strict=True)
    if not isinstance(path, str) or path not in GD_PATHS:
        raise ValueError(f"path: unknown form {path if isinstance(path, str) and len(path) <= 60 else type(path).__name__!r}; choose from {', '.join(GD_PATHS)}")
    steps = gd_steps(t_end, eta)
    n_points = as_int("n_points", n_points, low=2)
    stride = max(1, steps // (n_points - 1))
    n_snap = min(n_points, steps + 1)
    method = f"GD(eta={eta:g})"
    if not weights_norm(W_A, W_B) <= max_norm:  # above the limit from the start
        check_memory(samples_memory(1, problem.m, problem.d_A, problem.d_B), "gradient_descent")
        return Trajectory(np.zeros(1), W_A[None].copy(), W_B[None].copy(), "diverged", 0.0, 0, method, names,
                          message=f"the initial state is above max_norm = {max_norm:g}", path="full")
    system = build_system(problem, names, W_A, W_B, path)
    if system.path != "reduced":  # the reduced path keeps n_snap small states instead
        check_memory(samples_memory(n_snap, problem.m, problem.d_A, problem.d_B), "gradient_descent")
    f = system.make_f()
    y = system.y0.copy()
    ts, ys = [0.0], [y.copy()]
    status, t_stop, k = "completed", steps * eta, steps
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(1, steps + 1):
            y = y + eta * f(0.0, y)
            norm = np.sqrt(y @ y)
            if not np.isfinite(norm) or norm > max_norm:
                status, t_stop = "diverged", k * eta
                if np.isfinite(norm):
                    ts.append(k * eta)
                    ys.append(y.copy())
                break
            if k % stride == 0 or k == steps:
                ts.append(k * eta)
                ys.append(y.copy())
    W_As, W_Bs = system.weights(np.array(ys).T)
    return Trajectory(np.array(ts), W_As, W_Bs, status, t_stop, steps if status == "completed" else k, method, names,
                      path=system.path)
