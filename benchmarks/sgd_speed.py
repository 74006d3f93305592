"""Mini-batch SGD steps per second: structured vs full `sgd` vs a hand-written factored NumPy loop (issue 12).

    python benchmarks/sgd_speed.py [--repeats 5] [--full-repeats 1]

Instances (d = 8, r = m = 4, the size of `cdyn train`'s default; d = 256 and 4096 with r = m = 8 and
32): `random_problem` with isotropic noise 0.1, λ = 1, init scale 1e-2, the spectral loss
(U-statistic negatives), batch 256, fresh pairs every step (online). For each size the
contenders run interleaved under one BLAS thread (threadpoolctl), each a whole number of
8192-row chunks (32 steps a chunk at batch 256), and the median steps/second over the
repeats is reported with the min-max of the per-repeat ratio to the NumPy loop:

* `structured`: `sgd(path="structured")`, what `sgd` runs by default: the batch as its factors
  (Z, Ξ_A, Ξ_B), features W X^T (m×n), no d×d array;
* `full`: `sgd(path="full")`, what `sgd` did before: X_A = Z A^T + Ξ_A (σI)^T through a d×d σI
  and the lifted estimators on X (and the d×d moments of the Problem);
* `numpy`: what a researcher would write on the same random stream: a chunk of u, Ξ_A, Ξ_B
  drawn as `sample_pairs` does, X = Z A^T + σΞ formed per chunk (8192×d), then per step
  F = W X^T and the U-statistic gradient through F. It holds two 8192×d chunks; the
  structured path holds O(batch·d) and draws Ξ_A twice when a chunk's section is over
  `BUFFER_BYTES` (here at d = 4096).

Compiling (both paths) and the full path's d×d moments of the Problem are done before the
timings, like the Problem itself. Every run's final W is checked against the NumPy loop's
(same seed: same numbers to 1e-9).
The full path at d = 4096 takes about a minute a chunk (an 8192×4096 by 4096×4096 product), so
it runs `--full-repeats` times (one chunk each) and is left out of the interleaving order there.
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
from cdyn.numerics._batch_structured import structured_batch_function  # noqa: E402

SIGMA, BATCH, CHUNK, ETA = 0.1, 256, 8192, 0.01


def numpy_sgd(p, W_A, W_B, eta, steps, seed):
    """Hand-written factored SGD (spectral loss, U-statistic negatives), `sample_pairs`'s stream."""
    rng = np.random.default_rng(seed)
    A, B, lam, n, r, d_A, d_B = p.A, p.B, p.lam, BATCH, p.r, p.d_A, p.d_B
    c = lam / (n * (n - 1))
    for k in range(steps):
        i = (k * n) % CHUNK
        if i == 0:
            Z = rng.standard_normal((CHUNK, r))
            XA = Z @ A.T + SIGMA * rng.standard_normal((CHUNK, d_A))
            XB = Z @ B.T + SIGMA * rng.standard_normal((CHUNK, d_B))
        xa, xb = XA[i: i + n], XB[i: i + n]
        FA, FB = W_A @ xa.T, W_B @ xb.T
        dg = np.einsum("ij,ij->j", FA, FB)  # diag(F_A^T F_B): the positive pairs, left out of the negatives
        PA = -FB / n + c * ((FB @ FB.T) @ FA - FB * dg)
        PB = -FA / n + c * ((FA @ FA.T) @ FB - FA * dg)
        W_A, W_B = W_A - eta * (PA @ xa), W_B - eta * (PB @ xb)
    return W_A, W_B


def case(d: int, rm: int, steps: dict[str, int], repeats: dict[str, int]) -> list[str]:
    rng = np.random.default_rng(0)
    spec_A, spec_B = np.geomspace(2.0, 0.4, rm), np.geomspace(1.8, 0.45, rm) * rng.uniform(0.9, 1.1, rm)
    p = numerics.random_problem(tuple(spec_A), tuple(spec_B), d_A=d, d_B=d, m=rm, noise_A=SIGMA, noise_B=SIGMA)
    W = numerics.random_init(p, 1e-2)
    runs = {
        "numpy": lambda n: numpy_sgd(p, *W, ETA, n, 0),
        "structured": lambda n: numerics.sgd(p, *W, ETA, steps=n, batch=BATCH, seed=0, n_points=2, path="structured"),
        "full": lambda n: numerics.sgd(p, *W, ETA, steps=n, batch=BATCH, seed=0, n_points=2, path="full"),
    }
    runs = {k: v for k, v in runs.items() if k in steps}
    # Compiled code (both paths) and the full path's d×d moments of this Problem: outside the timings.
    structured_batch_function(p, ("pos", "neg"), BATCH)
    if "full" in runs:
        numerics.batch_function(p, ("pos", "neg"), BATCH)
    rate: dict[str, list[float]] = {k: [] for k in runs}
    finals = {}
    for rep in range(max(repeats.values())):
        for k, fn in runs.items():
            if rep >= repeats[k]:
                continue
            t = time.perf_counter()
            out = fn(steps[k])
            rate[k].append(steps[k] / (time.perf_counter() - t))
            finals[k] = (out.W_A[-1], out.W_B[-1]) if k != "numpy" else out
    for k in runs:  # correctness against the NumPy loop on the same stream
        ref = numpy_sgd(p, *W, ETA, steps[k], 0) if steps[k] != steps["numpy"] else finals["numpy"]
        gap = max(np.abs(finals[k][i] - ref[i]).max() / np.abs(ref[i]).max() for i in (0, 1))
        assert gap < 1e-9, (d, rm, k, gap)
    base = np.median(rate["numpy"])
    lines = []
    for k in runs:
        r = np.array(rate[k])
        # per-repeat ratios where the repeats were interleaved with the NumPy loop's
        ratio = r / np.array(rate["numpy"][: len(r)])
        lines.append(f"| {d} | {rm} | {k} | {np.median(r):,.1f} | {np.median(r) / base:.3g}× "
                     f"({ratio.min():.3g}-{ratio.max():.3g}) | {steps[k]} × {len(r)} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--full-repeats", type=int, default=1, help="repeats of the full path at d = 4096")
    ap.add_argument("--no-full", action="store_true", help="skip the full-form (old) SGD")
    args = ap.parse_args()
    print("| d | r = m | contender | steps/s (median) | vs NumPy loop, median (per-repeat min-max) | steps × runs |")
    print("|---|---|---|---|---|---|")
    with threadpool_limits(1, user_api="blas"):
        # d = 8, r = m = 4: the size of `cdyn train`'s default config
        for d, rm in ((8, 4), (256, 8), (256, 32), (4096, 8), (4096, 32)):
            chunk_steps = CHUNK // BATCH
            steps = {"numpy": {8: 32, 256: 4}.get(d, 2) * chunk_steps}
            steps["structured"] = steps["numpy"]
            repeats = {"numpy": args.repeats, "structured": args.repeats}
            if not args.no_full:
                steps["full"] = steps["numpy"] if d < 4096 else chunk_steps
                repeats["full"] = args.repeats if d < 4096 else args.full_repeats
            for line in case(d, rm, steps, repeats):
                print(line, flush=True)


if __name__ == "__main__":
    main()
