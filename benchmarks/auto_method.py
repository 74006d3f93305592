"""`method="auto"` against each fixed solver (LSODA with and without the analytic Jacobian), per instance family (issue 12, item 3).

    python benchmarks/auto_method.py [--repeats 3]

Families (seeded, several instances each, the kinds the claims engine and `cdyn simulate`
integrate): decoupled small instances (r = m = 3-4, d ≤ 8, isotropic noise or none), general
instances with isotropic noise (d = 16-64, r = m = 4-8: full or reduced path), general
instances with thin (dense-factor) noise (`canonical_instance`, d ≤ 32), and the stiff
family of `benchmarks/cases.py` (κ_C ≈ 1.6·10³). Each run: small init, `integrate(...,
t_end, grad_tol=1e-6)` at the default rtol 1e-8. For each family, the per-method time is the
sum over its instances of the median (over interleaved repeats) time; the ratio is auto /
best fixed. Methods that end in another status than auto are flagged.
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
from benchmarks.cases import stiff_problem  # noqa: E402

METHODS = ("auto", "LSODA", "LSODA+jac", "DOP853", "RK45", "BDF")


def families() -> dict[str, list[tuple[numerics.Problem, float]]]:
    fam: dict[str, list] = {"decoupled d<=8": [], "general iso d=16-64": [], "general thin d<=32": [],
                            "moderate κ_C≈100-300": [], "stiff": []}
    for s in range(4):
        inst = numerics.decoupled_instance((2.0, 1.2, 0.6, 0.35)[: 3 + s % 2], (1.7, 1.0, 0.7, 0.4)[: 3 + s % 2],
                                           sigma_A=0.1 * (s % 2), sigma_B=0.1 * (s % 2), extra_d_A=s, extra_d_B=1,
                                           seed=s)
        fam["decoupled d<=8"].append((inst.problem, 400.0))
    for s, (d, rm) in enumerate(((16, 4), (32, 8), (64, 8), (64, 4))):
        p = numerics.random_problem(tuple(np.geomspace(1.5, 0.4, rm)), tuple(np.geomspace(1.3, 0.45, rm)), d_A=d,
                                    d_B=d, m=rm, noise_A=0.1, noise_B=0.1, seed=s)
        fam["general iso d=16-64"].append((p, 2000.0))
    for s, d in enumerate((8, 16, 24, 32)):
        ci = numerics.canonical_instance((0.9, 0.7, 0.5), tuple(np.linspace(1.5, 0.5, d)), tuple(np.linspace(1.2, 0.6, d)),
                                         m=3, seed=s)
        fam["general thin d<=32"].append((ci.problem, 2000.0))
    for s, e in enumerate((1.0, 1.25)):  # aligned views, κ_C = (a_1/a_r)² = 10^(2e)
        a = tuple(np.geomspace(1.0, 10**-e, 4))
        fam["moderate κ_C≈100-300"].append((numerics.random_problem(a, a, d_A=12, d_B=12, m=4, noise_A=0.05,
                                                                     noise_B=0.05, seed=5 + s, shared_right=True),
                                             10000.0))
    for s in range(2):
        fam["stiff"].append((stiff_problem(12, 4, 4, seed=3 + s), 10000.0))
    return fam


def run(p: numerics.Problem, t_end: float, method: str):
    W = numerics.random_init(p, 1e-2 / np.sqrt(max(p.d_A, p.d_B)), 0)
    jac = {"LSODA": False, "LSODA+jac": True}.get(method)  # BDF: the analytic Jacobian (integrate's default)
    return numerics.integrate(p, *W, t_end, method=method.split("+")[0], jac=jac, grad_tol=1e-6)


def main() -> None:  # noqa: C901
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated family names (prefixes)")
    args = ap.parse_args()
    print("| family | instances | " + " | ".join(METHODS) + " | auto → | auto / best fixed | its method's column / best |")
    print("|---|---|" + "---|" * len(METHODS) + "---|---|---|")
    with threadpool_limits(1, user_api="blas"):
        for name, items in families().items():
            if args.only and not any(name.startswith(o) for o in args.only.split(",")):
                continue
            total = dict.fromkeys(METHODS, 0.0)
            chosen, flags, picked = set(), set(), set()
            for p, t_end in items:
                ref = run(p, t_end, "auto")  # warm-up (compilation) and the auto status
                chosen.add(f"{ref.path}/{ref.method}")
                picked.add(ref.method)
                times = {k: [] for k in METHODS}
                for _ in range(args.repeats):
                    for k in METHODS:
                        t0 = time.perf_counter()
                        tr = run(p, t_end, k)
                        times[k].append(time.perf_counter() - t0)
                        if tr.status != ref.status:
                            flags.add(f"{k}: {tr.status}")
                for k in METHODS:
                    total[k] += float(np.median(times[k]))
            best = min(total[k] for k in METHODS if k != "auto")
            best_k = min((k for k in METHODS if k != "auto"), key=lambda k: total[k])
            cells = " | ".join(f"{total[k] * 1e3:.0f} ms" for k in METHODS)
            note = f" ({'; '.join(sorted(flags))})" if flags else ""
            # auto and the fixed method it picks are the same computation timed apart: the
            # second ratio is the choice's cost without that timing noise
            own = f"{total[next(iter(picked))] / best:.2f}×" if len(picked) == 1 and next(iter(picked)) in total else "—"
            print(f"| {name} | {len(items)} | {cells} | {', '.join(sorted(chosen))} | "
                  f"{total['auto'] / best:.2f}× (best {best_k}){note} | {own} |", flush=True)


if __name__ == "__main__":
    main()
