"""How thin are the thin expected-false claims, and who finds their counterexamples?

    python benchmarks/thin_claims.py --mc 3000          # volume of the counterexample region
    python benchmarks/thin_claims.py --hit-rate         # seeds 0..9: Hypothesis alone vs + local search

`--mc N` samples each claim's box uniformly (log-uniform on log parameters: the same
coordinates the strategy and the local search use) N times with a fixed NumPy seed, runs
the claim's own check on each point and reports the fraction of negative (or non-finite)
margins with its exact (Clopper–Pearson) 95% interval. `--hit-rate` runs the engine at the
default budget for seeds 0..9, once with the second stage off (`local_budget=0`) and once
with it, and reports how many seeds falsify the claim, and the checks each stage used.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
from scipy.stats import beta
from threadpoolctl import threadpool_limits

from cdyn import claims

THIN = ("C5-thin-false", "C9-thin-false")


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def monte_carlo(cid: str, n: int, seed: int = 0) -> dict:
    c = claims.get_claim(cid)
    assert c.space is not None, cid
    pts = c.space.sample(np.random.default_rng(seed), n)
    t0 = time.perf_counter()
    with threadpool_limits(limits=1):
        margins = np.array([float(c.check(c.space.instance(p)).margin) for p in pts])
    bad = int(np.sum(~(margins >= 0)))
    lo, hi = clopper_pearson(bad, n)
    return {"claim": cid, "n": n, "negative": bad, "fraction": bad / n, "ci95": [lo, hi],
            "seconds_per_check": (time.perf_counter() - t0) / n}


def hit_rate(cid: str, seeds: range) -> dict:
    c = claims.get_claim(cid)
    rows = []
    for s in seeds:
        alone = claims.run_claim(c, seed=s, local_budget=0)
        both = claims.run_claim(c, seed=s)
        rows.append({"seed": s, "hypothesis_alone": alone.result, "alone_worst_margin": alone.worst_margin,
                     "with_local_search": both.result, "found_by": both.found_by, "checks": both.checks})
    return {"claim": cid, "seeds": len(rows),
            "hypothesis_alone_falsified": sum(r["hypothesis_alone"] == "falsified" for r in rows),
            "with_local_search_falsified": sum(r["with_local_search"] == "falsified" for r in rows),
            "max_local_checks": max(r["checks"]["local_search"] for r in rows), "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mc", type=int, default=0, help="Monte Carlo samples per claim (0: skip)")
    ap.add_argument("--hit-rate", action="store_true", help="seeds 0..9, Hypothesis alone vs with local search")
    ap.add_argument("--claims", default=",".join(THIN))
    ap.add_argument("--json", default=None, help="also write the numbers to this file")
    args = ap.parse_args()
    out = {}
    for cid in args.claims.split(","):
        if args.mc:
            r = monte_carlo(cid, args.mc)
            out.setdefault(cid, {})["monte_carlo"] = r
            print(f"{cid}: {r['negative']}/{r['n']} negative margins = {100 * r['fraction']:.2f}% "
                  f"(95% CI {100 * r['ci95'][0]:.2f}-{100 * r['ci95'][1]:.2f}%), {r['seconds_per_check'] * 1e3:.0f} ms/check")
        if args.hit_rate:
            r = hit_rate(cid, range(10))
            out.setdefault(cid, {})["hit_rate"] = r
            print(f"{cid}: falsified at the default budget in {r['hypothesis_alone_falsified']}/10 seeds by Hypothesis "
                  f"alone, {r['with_local_search_falsified']}/10 with the local search "
                  f"(at most {r['max_local_checks']} extra checks)")
            for row in r["rows"]:
                print(f"  seed {row['seed']}: alone {row['hypothesis_alone']} (worst {row['alone_worst_margin']:.3g}); "
                      f"with stage 2 {row['with_local_search']} by {row['found_by']}, checks {row['checks']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2, default=lambda x: None if isinstance(x, float) and not math.isfinite(x) else x)


if __name__ == "__main__":
    main()
