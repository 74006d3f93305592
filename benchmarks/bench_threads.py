"""One BLAS thread against two, for the right-hand sides and the thin factorisations of setup."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from cdyn import numerics
from cases import scaling_problem
from timing import Row, interleaved_medians


def _limited(fn, k):
    def g():
        with threadpool_limits(k):
            return fn()
    return g


def run(quick: bool) -> list[Row]:
    rows = []
    repeats = 9 if quick else 21
    for path, d in (("full", 64), ("full", 256), ("full", 1024), ("structured", 1024), ("structured", 4096)):
        p = scaling_problem(d, r=32, m=32)
        f = numerics.flow_function(p, path=path).vector_field()
        y = np.random.default_rng(0).standard_normal(p.m * 2 * d) * 0.1
        number = max(1, int(5e7 / numerics.flow_function(p, path=path).flops))
        one, two = interleaved_medians([_limited(lambda: [f(0, y) for _ in range(number)], 1),
                                        _limited(lambda: [f(0, y) for _ in range(number)], 2)], repeats)
        flops = numerics.flow_function(p, path=path).flops
        rows.append(Row("threads", f"{path} RHS d={d} m=32 ({flops / 1e6:.0f} Mflop): 1 vs 2 threads",
                        one / number, two / number, str(repeats * number)))
    if not quick:  # the one RHS above SINGLE_THREAD_FLOPS: naive full flow at d=4096 (4.3 Gflop)
        p = scaling_problem(4096, r=32, m=32)
        f = numerics.flow_function(p, path="full").vector_field()
        y = np.random.default_rng(0).standard_normal(p.m * 2 * 4096) * 0.1
        one, two = interleaved_medians([_limited(lambda: f(0, y), 1), _limited(lambda: f(0, y), 2)], 5)
        rows.append(Row("threads", "full RHS d=4096 m=32 (4295 Mflop): 1 vs 2 threads", one, two, "10"))
    M = np.random.default_rng(0).standard_normal((4096, 32))
    one, two = interleaved_medians([_limited(lambda: np.linalg.svd(M, full_matrices=False), 1),
                                    _limited(lambda: np.linalg.svd(M, full_matrices=False), 2)], repeats)
    rows.append(Row("threads", "setup SVD of a 4096×32 factor: 1 vs 2 threads", one, two, "—"))
    return rows
