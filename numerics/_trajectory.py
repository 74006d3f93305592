"""The one result type of `integrate`, `gradient_descent` and `sgd`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np

Status = Literal["completed", "converged", "diverged", "failed", "plateau"]


def weights_norm(W_A: np.ndarray, W_B: np.ndarray) -> float:
    """$\\sqrt{\\|W_A\\|_F^2 + \\|W_B\\|_F^2}$, `inf` when it overflows (the divergence test)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sqrt(np.sum(W_A * W_A) + np.sum(W_B * W_B)))


@dataclass(frozen=True)
class Trajectory:
    """Weights on a time grid. `status` says how the run ended and `t_stop` when.

    - `completed`: reached `t_end`;
    - `converged`: $\\|\\nabla L\\|$ fell below the tolerance at `t_stop` and the point is certified
      near a stable equilibrium (`integrate`, see `_certify`);
    - `plateau`: reached `t_end` on a saddle/plateau where the gradient is small but the
      Jacobian has an unstable direction (`message` says which);
    - `diverged`: $\\|W\\|$ exceeded the bound (or became non-finite) at `t_stop`;
    - `failed`: the solver gave up (`message` says why).
    """

    t: np.ndarray
    W_A: np.ndarray
    W_B: np.ndarray
    status: Status
    t_stop: float
    nfev: int
    method: str
    terms: tuple[str, ...]
    message: str = ""
    path: str = "full"
    dense: Callable[[float], tuple[np.ndarray, np.ndarray]] | None = field(default=None, repr=False)
    #: The solver's own step times (where the dense output's pieces join), when it kept them.
    t_steps: np.ndarray | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        """One line, e.g. `Trajectory(path=reduced, method=LSODA, status=converged at t=41.3, 401 samples)`;
        the arrays are fields and `summary()` has the rest."""
        stop = "" if self.status == "completed" else f" at t={self.t_stop:.4g}"
        return (f"Trajectory(terms={'+'.join(self.terms)}, path={self.path}, method={self.method}, "
                f"status={self.status}{stop}, {len(self.t)} samples"
                + (f", t_end={self.t[-1]:.4g})" if len(self.t) else ")"))

    def __len__(self) -> int:
        return len(self.t)

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """$(W_A(t), W_B(t))$: the solver's dense output, or linear interpolation."""
        if self.dense is not None:
            return self.dense(t)
        i = int(np.clip(np.searchsorted(self.t, t), 1, len(self.t) - 1))
        w = (t - self.t[i - 1]) / (self.t[i] - self.t[i - 1])
        return ((1 - w) * self.W_A[i - 1] + w * self.W_A[i], (1 - w) * self.W_B[i - 1] + w * self.W_B[i])

    def summary(self) -> dict:
        return {"status": self.status, "t_stop": float(self.t_stop), "nfev": int(self.nfev),
                "method": self.method, "terms": list(self.terms), "path": self.path,
                "points": len(self.t), "message": self.message}
