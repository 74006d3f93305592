r"""Population gradient descent $W \leftarrow W - \eta\nabla L$ on the flow's time axis $t = k\eta$."""

from __future__ import annotations

import numpy as np

from ._flowfn import flow_function
from ._integrate import check_init
from ._problem import Problem
from ._trajectory import Trajectory
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
    """$\\lceil t_{end}/\\eta\\rceil$ steps; about `n_points` snapshots, always including the last."""
    fn = flow_function(problem, terms)
    W_A, W_B = check_init(problem, W_A0, W_B0)
    eta = as_real("eta", eta, low=0.0, strict=True)
    t_end = as_real("t_end", t_end, low=0.0, strict=True)
    max_norm = as_real("max_norm", max_norm, low=0.0, strict=True)
    steps = max(1, int(round(t_end / eta)))
    stride = max(1, steps // (as_int("n_points", n_points, low=2) - 1))
    ts, As, Bs = [0.0], [W_A.copy()], [W_B.copy()]
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
