"""Gradient-descent steps per second: the toolkit vs a hand-written factored NumPy loop (issue 12).

    python benchmarks/gd_speed.py [--repeats 5]

Instances: `random_problem` with isotropic noise 0.1, λ = 1, small init. For each size the
three contenders run interleaved (one BLAS thread), each a fixed number of steps, and the
median steps/second over `--repeats` is reported with the min-max of the per-repeat ratio:

* `auto`: `gradient_descent` as a user calls it (path "auto": reduced here);
* `structured`: `gradient_descent(path="structured")` (thin factors, any noise);
* `full`: `gradient_descent(path="full")`, what `gradient_descent` did before (d×d moments);
* `numpy`: a factored loop a researcher would write, W_A ← W_A + η(W_B B Aᵀ − λ H_B (W_A A Aᵀ + σ² W_A))
  with H_B = (W_B B)(W_B B)ᵀ + σ² W_B W_Bᵀ; no d×d matrix.

Each contender's wall time includes its setup (the toolkit's SVD of the factors, the
compiled code's cache lookup); `Problem` construction is outside all of them. Every
run's final W is checked against the NumPy loop's.
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

SIGMA = 0.1


def numpy_gd(p, W_A, W_B, eta, steps):
    A, B, lam, s2 = p.A, p.B, p.lam, SIGMA**2
    for _ in range(steps):
        WAA, WBB = W_A @ A, W_B @ B
        H_A = WAA @ WAA.T + s2 * (W_A @ W_A.T)
        H_B = WBB @ WBB.T + s2 * (W_B @ W_B.T)
        dA = WBB @ A.T - lam * (H_B @ (WAA @ A.T + s2 * W_A))
        dB = WAA @ B.T - lam * (H_A @ (WBB @ B.T + s2 * W_B))
        W_A, W_B = W_A + eta * dA, W_B + eta * dB
    return W_A, W_B


def case(d: int, rm: int, steps: dict[str, int], repeats: int, eta: float = 0.05) -> list[str]:
    rng = np.random.default_rng(0)
    spec_A, spec_B = np.geomspace(2.0, 0.4, rm), np.geomspace(1.8, 0.45, rm) * rng.uniform(0.9, 1.1, rm)
    p = numerics.random_problem(tuple(spec_A), tuple(spec_B), d_A=d, d_B=d, m=rm, noise_A=SIGMA, noise_B=SIGMA)
    W = numerics.random_init(p, 1e-2)
    runs = {
        "numpy": lambda n: numpy_gd(p, *W, eta, n),
        "auto": lambda n: numerics.gradient_descent(p, *W, eta, n * eta, n_points=2),
        "structured": lambda n: numerics.gradient_descent(p, *W, eta, n * eta, n_points=2, path="structured"),
        "full": lambda n: numerics.gradient_descent(p, *W, eta, n * eta, n_points=2, path="full"),
    }
    runs = {k: v for k, v in runs.items() if k in steps}
    for k, fn in runs.items():  # warm-up and correctness against the NumPy loop
        out = fn(steps[k])
        ref = numpy_gd(p, *W, eta, steps[k])
        got = (out.W_A[-1], out.W_B[-1]) if k != "numpy" else out
        gap = max(np.abs(got[0] - ref[0]).max(), np.abs(got[1] - ref[1]).max()) / np.abs(ref[0]).max()
        assert gap < 1e-9, (k, gap)
    rate: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for k, fn in runs.items():
            t = time.perf_counter()
            fn(steps[k])
            rate[k].append(steps[k] / (time.perf_counter() - t))
    base = np.array(rate["numpy"])
    lines = []
    for k in runs:
        r = np.array(rate[k])
        ratio = r / base
        lines.append(f"| {d} | {rm} | {k} | {np.median(r):,.0f} | {np.median(ratio):.3g}× "
                     f"({ratio.min():.3g}-{ratio.max():.3g}) | {steps[k]} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-full", action="store_true", help="skip the full-form (old) GD")
    args = ap.parse_args()
    print("| d | r = m | contender | steps/s (median) | vs NumPy factored, median (min-max) | steps per run |")
    print("|---|---|---|---|---|---|")
    with threadpool_limits(1, user_api="blas"):
        for d, rm in ((256, 8), (256, 32), (4096, 8), (4096, 32)):
            steps = {"numpy": 2000 if d == 256 else 400, "auto": 2000, "structured": 2000 if d == 256 else 200}
            if not args.no_full:
                steps["full"] = 400 if d == 256 else 4
            steps = {k: max(4, v // (4 if rm == 32 else 1)) if k != "auto" else v for k, v in steps.items()}
            for line in case(d, rm, steps, args.repeats):
                print(line, flush=True)


if __name__ == "__main__":
    main()
