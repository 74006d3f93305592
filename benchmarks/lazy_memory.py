"""Peak memory and end-to-end time of a large reduced-path run (issue 12, items 2-3).

    python benchmarks/lazy_memory.py [--repeats 3]

Each case runs in a fresh Python process (so `ru_maxrss` is that run's peak): build the
instance (`random_problem`, isotropic noise 0.1 given as a scalar), small init (1e-3),
`integrate(..., grad_tol=1e-6)` to convergence on the automatic path, then the final κ.
Time is from before `random_problem` to the final κ (imports excluded), one BLAS thread;
the run is done twice in the process: `cold` includes deriving and compiling the reduced
ODE (cached after), `time` is the second run. The instance is the d = 4096 target of
`benchmarks/bench_scaling.py` (`scaling_problem`, `small_init`, t_end 5000).
`frames=formed` additionally forms every frame of W_A, W_B (what `integrate` returned
before the trajectories were lazy), to measure what laziness saves in the same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
from threadpoolctl import threadpool_limits
from cdyn import numerics
d, rm, formed = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "formed"
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

def once():
    t0 = time.perf_counter()
    p = numerics.random_problem(np.geomspace(1.0, 0.3, rm), np.geomspace(0.9, 0.35, rm), d_A=d, d_B=d, m=rm,
                                noise_A=0.1, noise_B=0.1, lam=1.0, seed=1)  # benchmarks/cases.py scaling_problem
    W = numerics.random_init(p, 1e-2 / np.sqrt(d), 0)  # cases.small_init
    tr = numerics.integrate(p, *W, 5000.0, grad_tol=1e-6)
    if formed:
        WA, WB = tr.frames()
    k = numerics.kappa(p, tr.W_A[-1], tr.W_B[-1])
    return time.perf_counter() - t0, tr, k

with threadpool_limits(1, user_api="blas"):
    cold, _, _ = once()  # a fresh process: derivation and compilation included
    dt, tr, k = once()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"time": dt, "cold": cold, "peak_MB": peak / 1024, "import_MB": base / 1024, "kappa": k, "status": tr.status,
                  "path": tr.path, "method": tr.method, "t_stop": tr.t_stop, "nfev": tr.nfev, "lazy": tr.lazy}))
"""


def run(d: int, rm: int, formed: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(d), str(rm), "formed" if formed else "lazy"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", default="4096,16384")
    args = ap.parse_args()
    import numpy as np
    print("| d | r = m | frames | time (median, min-max) | cold process (median) | peak RSS | RSS after imports | status, path, method | κ_end |")
    print("|---|---|---|---|---|---|---|---|---|")
    for d in map(int, args.sizes.split(",")):
        res: dict[bool, list[dict]] = {False: [], True: []}
        for _ in range(args.repeats):  # interleaved
            for formed in (False, True):
                res[formed].append(run(d, 32, formed))
        for formed in (False, True):
            rs = res[formed]
            t = np.array([r["time"] for r in rs])
            r0 = rs[0]
            cold = np.median([r["cold"] for r in rs])
            print(f"| {d} | 32 | {'formed' if formed else 'lazy'} | {np.median(t):.3g} s ({t.min():.3g}-{t.max():.3g}) "
                  f"| {cold:.3g} s | {max(r['peak_MB'] for r in rs):.0f} MB | {r0['import_MB']:.0f} MB | {r0['status']} t*={r0['t_stop']:.4g}, "
                  f"{r0['path']}, {r0['method']} | {r0['kappa']:.6g} |", flush=True)
        ratio = np.array([a["time"] / b["time"] for a, b in zip(res[False], res[True])])
        print(f"| {d} | 32 | lazy / formed time | {np.median(ratio):.3g}× ({ratio.min():.3g}-{ratio.max():.3g}) | | | | | |")


if __name__ == "__main__":
    main()
