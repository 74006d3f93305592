r"""Automatic choices of `integrate`: which form of the flow, which solver, how many threads.

* **Path.** Among the forms that apply (`reduced` needs isotropic or zero noise and
  terms whose flow closes on the reduced state), take the one whose compiled
  right-hand side is cheapest: estimated flops plus a fixed cost per NumPy call, which
  dominates for small matrices.
* **Method.** An instance is *stiff* when its data condition number
  $\kappa_C = \sigma_1(C)/\sigma_k(C)$, $k = \min(m, \operatorname{rank} C)$, is at least
  $10^3$: mode $i$ relaxes at a rate set by $\sigma_i(C)$, so the fastest and slowest
  modes are $\kappa_C$ apart. Stiff instances get `STIFF_METHOD` (LSODA) with the analytic
  Jacobian (the winner of `benchmarks/run.py`, see `benchmarks/RESULTS.md`), others the
  explicit-implicit switcher LSODA, and states too large for a dense Jacobian DOP853.
* **Threads.** A second BLAS thread cost more than it gave at every size measured in
  `benchmarks/run.py`: below `SINGLE_THREAD_FLOPS` per right-hand side, one thread.
"""

from __future__ import annotations

import contextlib

import numpy as np
from threadpoolctl import threadpool_limits

from ._problem import Problem

#: One NumPy call's fixed cost in flops: ~1.5 µs at ~20 GFlop/s (measured: at d=64,
#: r=m=8 the 12-op full RHS took 18 µs and the 24-op reduced one 25 µs).
CALL_OVERHEAD_FLOPS = 3e4
#: Data condition number from which an instance counts as stiff (issue 5).
STIFF_CONDITION = 1e3
#: The solver used for stiff instances, with the analytic Jacobian: fastest in the stiff
#: comparison of `benchmarks/run.py` (LSODA+jac ahead of BDF+jac, Radau+jac and RK45).
STIFF_METHOD = "LSODA"
#: The solver for states too large for a dense Jacobian.
EXPLICIT_LARGE = "DOP853"
#: Below this many flops per right-hand side, BLAS runs on one thread. On this 2-core
#: machine one thread was faster at every size measured, up to the naive full flow at
#: d=4096 (4.3 Gflop: 190 vs 321 ms), and up to 100× faster when the other core was busy
#: (benchmarks/RESULTS.md); only larger right-hand sides are left to the BLAS default.
SINGLE_THREAD_FLOPS = 5e9


def estimated_cost(flops: float, n_ops: int) -> float:
    """Cost of one right-hand side in flop units, call overhead included."""
    return flops + CALL_OVERHEAD_FLOPS * n_ops


def _triangular(M: np.ndarray) -> np.ndarray:
    """$R$ of a thin QR, $M = QR$, so that $M^\\top M = R^\\top R$ (no $d\\times d$ product)."""
    return np.linalg.qr(M, mode="r") if M.shape[0] >= M.shape[1] else M


def signal_singular_values(p: Problem) -> np.ndarray:
    r"""Singular values of $C = A\Sigma_z B^\top$, from the $r\times r$ core $R_A \Sigma_z R_B^\top$."""
    cached = p.__dict__.get("_cdyn_svC")
    if cached is None:
        cached = np.linalg.svd(_triangular(p.A) @ p.Sigma_z @ _triangular(p.B).T, compute_uv=False)
        p.__dict__["_cdyn_svC"] = cached  # Problem is frozen; a pure cache of its data
    return cached


def norm_C(p: Problem) -> float:
    """$\\|C\\|_2$ without forming $C$."""
    s = signal_singular_values(p)
    return float(s[0]) if s.size else 0.0


def data_condition(p: Problem) -> float:
    """$\\kappa_C = \\sigma_1(C)/\\sigma_k(C)$ with $k = \\min(m, \\operatorname{rank} C)$."""
    s = signal_singular_values(p)
    if not s.size or s[0] == 0:
        return 1.0
    rank = int(np.sum(s > 1e-10 * s[0]))
    return float(s[0] / s[min(p.m, rank) - 1])


def is_stiff(p: Problem) -> bool:
    return data_condition(p) >= STIFF_CONDITION


def auto_method(p: Problem, n_state: int, max_dense: int) -> tuple[str, bool]:
    """`(method, use_jacobian)` for `method="auto"`.

    Stiff and small enough for a dense Jacobian: `STIFF_METHOD` with it. Otherwise LSODA,
    except for states too large for a dense Jacobian: there LSODA's stiff mode would
    estimate an $n\times n$ Jacobian by $n$ evaluations (measured: 12× more evaluations
    than DOP853 on the reduced $d=4096$, $r=m=32$ run), so the explicit DOP853 is used.
    """
    if n_state > max_dense:
        return EXPLICIT_LARGE, False
    if is_stiff(p):
        return STIFF_METHOD, True
    return "LSODA", False


def thread_limit(flops: float, threads: int | str | None):
    """A context that limits BLAS threads (`"auto"`: one thread for small right-hand sides)."""
    if threads is None:
        return contextlib.nullcontext()
    if threads == "auto":
        if flops >= SINGLE_THREAD_FLOPS:
            return contextlib.nullcontext()
        threads = 1
    return threadpool_limits(limits=int(threads), user_api="blas")
