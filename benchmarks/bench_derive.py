"""Derivation + compilation time: cold (a fresh interpreter, the on-disk derivation cache off) against cached
(a second call in the same process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from timing import Row

#: Each stage: what a first `integrate` on a new problem shape has to derive and compile.
_SCRIPT = r"""
import json, time
t = time.perf_counter()
import numpy as np
from cdyn import theory, numerics
from cdyn.numerics._integrate import build_system
out = {"import (expectation step, term registry)": time.perf_counter() - t}
p = numerics.random_problem(np.geomspace(1, .3, 4), np.geomspace(1, .4, 4), d_A=12, d_B=10, m=3,
                            noise_A=.1, noise_B=.1)
W = numerics.random_init(p, 0.1)
STAGES = {
    "full flow: derive + compile": lambda: build_system(p, ("pos", "neg"), *W, "full").make_f(),
    "structured flow: derive + compile": lambda: build_system(p, ("pos", "neg"), *W, "structured").make_f(),
    "reduced ODE: derive + compile": lambda: build_system(p, ("pos", "neg"), *W, "reduced").make_f(),
    "Jacobian (full): derive + compile": lambda: build_system(p, ("pos", "neg"), *W, "full").make_jac(),
}
for name, fn in STAGES.items():
    t = time.perf_counter(); fn(); cold = time.perf_counter() - t
    warm = []
    for _ in range(50):
        t = time.perf_counter(); fn(); warm.append(time.perf_counter() - t)
    out[name] = (cold, float(np.median(warm)))
print(json.dumps(out))
"""


def run(quick: bool) -> list[Row]:
    runs = []
    for _ in range(2 if quick else 5):
        # Cold means derived: with the disk cache on, a fresh process would read the previous run's results.
        res = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True,
                             env=os.environ | {"CDYN_CACHE_DIR": "off"})
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    rows = []
    imp = float(np.median([r["import (expectation step, term registry)"] for r in runs]))
    rows.append(Row("derive", "from cdyn import theory + numerics (cold process)", imp, None, "—", f"median of {len(runs)}"))
    for name in [k for k in runs[0] if k.startswith(("full", "structured", "reduced", "Jacobian"))]:
        cold = float(np.median([r[name][0] for r in runs]))
        warm = float(np.median([r[name][1] for r in runs]))
        rows.append(Row("derive", f"{name}: cached vs cold", warm, cold, "—",
                        "cached = lru_cache hit + binding the data"))
    return rows
