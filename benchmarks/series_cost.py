"""What a sample's metrics cost, in right-hand-side evaluations of the same instance (issue 10).

    python benchmarks/series_cost.py [--repeats 5]

`numerics.series` computes, at every sample, κ, the eigenvalue κ, the two per-view κ, the
loss, Q and ‖∇L‖. `numerics.check_samples` charges each sample `EVALS_PER_SAMPLE` evaluations
against the evaluation budget, so that `[run] n_points = 10⁵` is refused before the run instead
of measuring for minutes after it. This prints the measured ratio (series time per sample over
compiled-RHS time per call, both on the same 201 frames, interleaved, one BLAS thread): median
and min–max over repeats, per size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cdyn import numerics  # noqa: E402
from cdyn.numerics._metrics import cheapest_flow  # noqa: E402

SIZES = [(6, 5, 2, 3), (16, 16, 8, 8), (64, 64, 8, 8), (256, 256, 8, 8)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(f"charged: {numerics.EVALS_PER_SAMPLE} evaluations a sample")
    print("d_A d_B  m  r | series per sample / RHS per call: median (min-max) | ms a sample")
    with threadpool_limits(1):
        for dA, dB, m, r in SIZES:
            p = numerics.random_problem(list(np.linspace(3, 0.5, r)), list(np.linspace(2, 0.3, r)),
                                        d_A=dA, d_B=dB, m=m, seed=0)
            W = numerics.random_init(p, 0.1, 0)
            tr = numerics.integrate(p, *W, 30.0, ("pos", "neg"), n_points=201)
            fn = cheapest_flow(p, ("pos", "neg"))
            ratios, per = [], []
            for _ in range(args.repeats):
                t = time.perf_counter()
                numerics.series(p, tr)
                ts = (time.perf_counter() - t) / len(tr.t)
                t = time.perf_counter()
                for WA, WB in zip(tr.W_A, tr.W_B):
                    fn(WA, WB)
                tf = (time.perf_counter() - t) / len(tr.t)
                ratios.append(ts / tf)
                per.append(ts)
            print(f"{dA:3d} {dB:3d} {m:2d} {r:2d} | {np.median(ratios):6.1f} ({min(ratios):.1f}-{max(ratios):.1f})"
                  f"{'':30s} | {1e3 * np.median(per):.2f}")


if __name__ == "__main__":
    main()
