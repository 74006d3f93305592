"""Accuracy figures quoted in the issue notes: C1 gradient error, C3 Q drift, C4 GD ratios.

    python benchmarks/accuracy.py [--instances 200]

Seeded, so it prints the same numbers every run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cdyn import numerics  # noqa: E402
from tests.helpers import central_difference, rel_err  # noqa: E402
from tests.test_gd_convergence import gd_error  # noqa: E402

TERM_SETS = [("pos",), ("neg",), ("wd",), ("pos", "neg"), ("pos", "neg", "wd")]


def random_instance(rng: np.random.Generator) -> numerics.Problem:
    r = int(rng.integers(1, 4))
    return numerics.random_problem(rng.uniform(0.3, 2.0, r), rng.uniform(0.3, 2.0, r), d_A=r + int(rng.integers(0, 4)),
                                   d_B=r + int(rng.integers(0, 4)), m=int(rng.integers(1, 4)),
                                   noise_A=rng.uniform(0, 0.3), noise_B=rng.uniform(0, 0.3),
                                   lam=rng.uniform(0.5, 2), mu=rng.uniform(0, 0.5), seed=int(rng.integers(1 << 30)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=200)
    n = ap.parse_args().instances
    rng = np.random.default_rng(0)
    c1, q_flow, ratios = 0.0, 0.0, []
    for i in range(n):
        p = random_instance(rng)
        W_A, W_B = numerics.random_init(p, 0.5, i)
        for terms in TERM_SETS:
            fn = numerics.flow_function(p, terms)
            dA, dB = fn(W_A, W_B)
            c1 = max(c1, rel_err(-dA, central_difference(lambda X: fn.loss(X, W_B), W_A, 1e-5)),
                     rel_err(-dB, central_difference(lambda X: fn.loss(W_A, X), W_B, 1e-5)))
        if i < 20:
            ref = numerics.integrate(p, W_A, W_B, 2.0, method="DOP853", rtol=1e-12, atol=1e-14)
            Q0 = numerics.conserved_Q(W_A, W_B)
            scale = max(np.sum(a * a) + np.sum(b * b) for a, b in zip(ref.W_A, ref.W_B))
            q_flow = max(q_flow, max(np.linalg.norm(numerics.conserved_Q(a, b) - Q0)
                                     for a, b in zip(ref.W_A, ref.W_B)) / scale)
            ratios.append(gd_error(p, W_A, W_B, ref, 0.01) / gd_error(p, W_A, W_B, ref, 0.005))
    print(f"C1 max relative gradient error over {n} instances x {len(TERM_SETS)} term sets: {c1:.2e}")
    print(f"C3 max |Q(t)-Q(0)|_F / max|W|^2 along DOP853 flows (rtol 1e-12, T=2, 20 instances): {q_flow:.2e}")
    print(f"C4 err(eta=0.01)/err(eta=0.005) over 20 instances: min {min(ratios):.3f}, "
          f"median {np.median(ratios):.3f}, max {max(ratios):.3f}")


if __name__ == "__main__":
    with threadpool_limits(limits=1):
        main()
