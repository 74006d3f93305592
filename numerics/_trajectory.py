r"""The one result type of `integrate`, `gradient_descent` and `sgd`, and lazy weight frames.

On the reduced path (THEORY §8) the run's state is $(X_A, Y_A, X_B, Y_B)$, $2m(r+q)$ numbers
per sample, and $W_A = [X_A\ Y_A]\,V_A^\top$ with $V_A = [U_A\ N_A]$ ($d_A\times(r+q)$).
`Frames` keeps those states and $V_A$ and rebuilds $W_A$ only for the frames asked for, so
a trajectory costs $O(\text{samples}\cdot m(r+q) + d(r+q))$ memory instead of
$O(\text{samples}\cdot m\,d)$; `np.asarray(traj.W_A)` (or saving it) still gives every frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

Status = Literal["completed", "converged", "diverged", "failed", "plateau", "uncertified"]


def weights_norm(W_A: np.ndarray, W_B: np.ndarray) -> float:
    """$\\sqrt{\\|W_A\\|_F^2 + \\|W_B\\|_F^2}$, `inf` when it overflows (the divergence test)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sqrt(np.sum(W_A * W_A) + np.sum(W_B * W_B)))


class Frames(NDArrayOperatorsMixin):
    r"""Weights $W[k] = Z[k] V^\top$ of a view, rebuilt on access from the reduced states.

    `ys` is samples × n (the flat reduced states); the view's $Z[k]$ ($m\times p$) is the
    concatenation of the blocks `ys[k, a:b]` reshaped to $m\times(b-a)/m$. Indexing with an
    integer gives one $m\times d$ frame, with a slice or index array a new ndarray of
    frames; iteration rebuilds one frame at a time; NumPy functions and operators see the
    full (samples × m × d) array.
    """

    def __init__(self, ys: np.ndarray, blocks: tuple[tuple[int, int], ...], V: np.ndarray, m: int):
        self.ys, self.blocks, self.V, self.m = ys, blocks, V, m
        self.shape = (ys.shape[0], m, V.shape[0])

    ndim = 3
    dtype = np.dtype(float)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        """Bytes the frames would take if formed (the object itself holds `ys` and `V`)."""
        return 8 * self.size

    def __len__(self) -> int:
        return self.shape[0]

    def _rebuild(self, ys: np.ndarray) -> np.ndarray:
        T, m = ys.shape[0], self.m
        Z = np.concatenate([ys[:, a:b].reshape(T, m, -1) for a, b in self.blocks], axis=2)
        return (Z.reshape(T * m, -1) @ self.V.T).reshape(T, m, -1)

    def reduced(self, key: object = slice(None)) -> np.ndarray:
        r"""The view's $Z = [X\ Y]$ for the selected samples (no $d$-sized work)."""
        ys = self.ys[key]
        T = 1 if ys.ndim == 1 else ys.shape[0]
        ys = ys.reshape(T, -1)
        Z = np.concatenate([ys[:, a:b].reshape(T, self.m, -1) for a, b in self.blocks], axis=2)
        return Z[0] if np.ndim(self.ys[key]) == 1 else Z

    def __getitem__(self, key: object) -> np.ndarray:
        rest: tuple = ()
        if isinstance(key, tuple):
            key, rest = (key[0], key[1:]) if key else (slice(None), ())
        if isinstance(key, (int, np.integer)):
            out = self._rebuild(self.ys[int(key)][None])[0]
        else:
            out = self._rebuild(self.ys[key])
        if not rest:
            return out
        return out[rest] if isinstance(key, (int, np.integer)) else out[(slice(None), *rest)]

    def __iter__(self):
        for k in range(len(self)):
            yield self[k]

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        out = self._rebuild(self.ys)
        return out if dtype is None else out.astype(dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = tuple(np.asarray(x) if isinstance(x, Frames) else x for x in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        def conv(x):
            if isinstance(x, Frames):
                return np.asarray(x)
            if isinstance(x, (list, tuple)):
                return type(x)(conv(v) for v in x)
            return x
        return func(*conv(args), **{k: conv(v) for k, v in kwargs.items()})

    def __repr__(self) -> str:
        return f"Frames({self.shape[0]}×{self.shape[1]}×{self.shape[2]}, rebuilt on access from {self.ys.shape[1]} numbers each)"

    def __reduce__(self):
        return (Frames, (self.ys, self.blocks, self.V, self.m))


@dataclass(frozen=True)
class Trajectory:
    """Weights on a time grid. `status` says how the run ended and `t_stop` when.

    `W_A`, `W_B` are samples × m × d arrays, or `Frames` (same indexing, rebuilt on access)
    when the run stepped the reduced state; `lazy` says which.

    - `completed`: reached `t_end`;
    - `converged`: $\\|\\nabla L\\|$ fell below the tolerance at `t_stop` and the point is certified
      near a stable equilibrium (`integrate`, see `_certify`);
    - `plateau`: reached `t_end` on a saddle/plateau where the gradient is small but the
      Jacobian has an unstable direction (`message` says which);
    - `uncertified`: the gradient is small but the certificate could not decide (a flat
      direction that is not a known symmetry of the loss, Lanczos not converged, a state
      beyond the matrix-free limit); never reported as `converged`;
    - `diverged`: $\\|W\\|$ exceeded the bound (or became non-finite) at `t_stop`;
    - `failed`: the solver gave up (`message` says why).
    """

    t: np.ndarray
    W_A: np.ndarray | Frames  # Frames on the reduced path: rebuilt on access
    W_B: np.ndarray | Frames
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

    @property
    def lazy(self) -> bool:
        """Whether the weights are rebuilt on access from the reduced state."""
        return isinstance(self.W_A, Frames)

    def frames(self) -> tuple[np.ndarray, np.ndarray]:
        """Every frame of $W_A$, $W_B$ as ndarrays (formed now when lazy), e.g. to save them."""
        return np.asarray(self.W_A), np.asarray(self.W_B)

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
