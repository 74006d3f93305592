r"""Automatic choices of `integrate`: which form of the flow, which solver, how many threads.

* **Path.** Among the forms that apply (`reduced` needs isotropic or zero noise and
  terms whose flow closes on the reduced state), take the one whose compiled
  right-hand side is cheapest: estimated flops plus a fixed cost per NumPy call, which
  dominates for small matrices.
* **Method.** An instance is *stiff* when its data condition number
  $\kappa_C = \sigma_1(C)/\sigma_k(C)$, $k = \min(m, \operatorname{rank} C)$, is at least
  $10^3$: mode $i$ relaxes at a rate set by $\sigma_i(C)$, so the fastest and slowest
  modes are $\kappa_C$ apart. Stiff instances get `STIFF_METHOD` (LSODA) with the analytic
  Jacobian (the winner of `benchmarks/run.py`, see `benchmarks/RESULTS.md`), and so do
  moderately conditioned ones ($\kappa_C \ge$ `JAC_CONDITION`); well-conditioned instances and
  states too large for a dense Jacobian get DOP853 (`benchmarks/auto_method.py`).
* **Threads.** A second BLAS thread cost more than it gave at every size measured in
  `benchmarks/run.py`: below `SINGLE_THREAD_FLOPS` per right-hand side, one thread.
"""

from __future__ import annotations

import contextlib
import sys

import numpy as np
from threadpoolctl import ThreadpoolController

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
#: The solver for well-conditioned instances (measured in `benchmarks/auto_method.py`).
EXPLICIT_SMALL = "DOP853"
#: From this data condition number on, `method="auto"` takes `STIFF_METHOD` with the
#: analytic Jacobian: at $\kappa_C$ = 100 and 316 (aligned views) LSODA+jac took 0.43-0.62×
#: DOP853's time, while on the general families ($\kappa_C$ below ~30) DOP853 was fastest.
JAC_CONDITION = 30.0
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
    """`(method, use_jacobian)` for `method="auto"`, from `benchmarks/auto_method.py`.

    * States too large for a dense Jacobian: DOP853 (LSODA's stiff mode would estimate an
      $n\\times n$ Jacobian by $n$ evaluations: 12× more evaluations than DOP853 on the
      reduced $d=4096$, $r=m=32$ run).
    * $\\kappa_C \\ge$ `JAC_CONDITION`: LSODA with the analytic Jacobian. Its explicit Adams
      steps run while the fast modes move, and it switches to BDF with the exact Jacobian
      once they settle; DOP853 is stability-limited there (1.6-2.3× LSODA+jac's time at
      $\\kappa_C$ = 100-316, 9× at 1.6·10³).
    * Otherwise DOP853: fastest or within 1.2× of the fastest on the decoupled, general
      isotropic and general thin-noise families (LSODA without the Jacobian, the previous
      choice, took up to 1.8× the best there).
    """
    if n_state > max_dense:
        return EXPLICIT_LARGE, False
    if data_condition(p) >= JAC_CONDITION:
        return STIFF_METHOD, True
    return EXPLICIT_SMALL, False


_CONTROLLER: list = [None, -1]


def limit_threads(limits: int, user_api: str | None = None):
    """`threadpoolctl.threadpool_limits(limits, user_api)`, without re-scanning the loaded libraries.

    `threadpool_limits` builds a `ThreadpoolController` each time, which walks every loaded
    shared object: 7-15 ms a call, paid ~750 times by one `cdyn verify` (5-11 s). The
    controller is kept and rebuilt only when `sys.modules` has grown, since a new BLAS or
    OpenMP runtime is loaded by importing an extension module."""
    n = len(sys.modules)
    if _CONTROLLER[0] is None or _CONTROLLER[1] != n:
        _CONTROLLER[:] = ThreadpoolController(), n
    return _CONTROLLER[0].limit(limits=limits, user_api=user_api)


def thread_limit(flops: float, threads: int | str | None):
    """A context that limits BLAS threads (`"auto"`: one thread for small right-hand sides)."""
    if threads is None:
        return contextlib.nullcontext()
    if threads == "auto":
        if flops >= SINGLE_THREAD_FLOPS:
            return contextlib.nullcontext()
        threads = 1
    return limit_threads(int(threads), "blas")
