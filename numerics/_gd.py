r"""Population gradient descent $W \leftarrow W - \eta\nabla L$ on the flow's time axis $t = k\eta$."""

from __future__ import annotations

import numpy as np

from ._budget import check_memory, gd_steps, samples_memory
from ._flowfn import flow_function
from ._integrate import check_init
from ._problem import Problem
from ._trajectory import Trajectory, weights_norm
from ._validate import as_int, as_real


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
) -> Trajectory:
    """$\\mathrm{round}(t_{end}/\\eta)$ steps; about `n_points` snapshots, always including the last.

    A start above `max_norm` is `diverged` at $t = 0$; a step count or stored snapshots beyond
    the budget (`numerics.budget`) are refused with a ValueError before the first step."""
    fn = flow_function(problem, terms)
    W_A, W_B = check_init(problem, W_A0, W_B0)
    eta = as_real("eta", eta, low=0.0, strict=True)
    t_end = as_real("t_end", t_end, low=0.0, strict=True)
    max_norm = as_real("max_norm", max_norm, low=0.0, strict=True)
    steps = gd_steps(t_end, eta)
    n_points = as_int("n_points", n_points, low=2)
    stride = max(1, steps // (n_points - 1))
    check_memory(samples_memory(min(n_points, steps + 1), problem.m, problem.d_A, problem.d_B), "gradient_descent")
    ts, As, Bs = [0.0], [W_A.copy()], [W_B.copy()]
    if not weights_norm(W_A, W_B) <= max_norm:  # above the limit from the start
        return Trajectory(np.array(ts), np.array(As), np.array(Bs), "diverged", 0.0, 0, f"GD(eta={eta:g})", fn.terms,
                          message=f"the initial state is above max_norm = {max_norm:g}")
    status, t_stop = "completed", steps * eta
    for k in range(1, steps + 1):
        dA, dB = fn(W_A, W_B)
        W_A, W_B = W_A + eta * dA, W_B + eta * dB
        norm = np.sqrt(np.sum(W_A * W_A) + np.sum(W_B * W_B))
        if not np.isfinite(norm) or norm > max_norm:
            status, t_stop = "diverged", k * eta
            if np.isfinite(norm):
                ts.append(k * eta)
                As.append(W_A.copy())
                Bs.append(W_B.copy())
            break
        if k % stride == 0 or k == steps:
            ts.append(k * eta)
            As.append(W_A.copy())
            Bs.append(W_B.copy())
    return Trajectory(np.array(ts), np.array(As), np.array(Bs), status, t_stop, steps if status == "completed" else k,
                      f"GD(eta={eta:g})", fn.terms)
