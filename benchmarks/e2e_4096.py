"""d = 4096, r = m = 32 end to end: Problem, random init, integrate to certified convergence, κ.

    python benchmarks/e2e_4096.py [t_end]        (default 3000; one BLAS thread)

Prints the status, the time split (problem, integration incl. certificate, κ) and the certificate's message.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import scaling_problem  # noqa: E402

from cdyn import numerics  # noqa: E402


def main() -> None:
    t_end = float(sys.argv[1]) if len(sys.argv) > 1 else 3000.0
    with threadpool_limits(1):
        t0 = time.perf_counter()
        p = scaling_problem(4096, 32, 32)
        W = numerics.random_init(p, 1e-3, 0)
        t1 = time.perf_counter()
        tr = numerics.integrate(p, *W, t_end, grad_tol=1e-6, n_points=2)
        t2 = time.perf_counter()
        k = numerics.kappa(p, tr.W_A[-1], tr.W_B[-1])
        t3 = time.perf_counter()
    print(f"{tr.status} at t={tr.t_stop:.4g} ({tr.nfev} RHS evals, path {tr.path}, {tr.method}); kappa {k:.4g}")
    print(f"problem {t1 - t0:.2f} s, integrate (incl. certificate) {t2 - t1:.2f} s, kappa {t3 - t2:.2f} s")
    print(tr.message)


if __name__ == "__main__":
    main()
