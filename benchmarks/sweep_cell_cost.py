r"""What a reduced-path sweep cell costs, before and after its metrics went to $O(dr^2)$, and what the
embedded cluster's start-up costs with spawned and with forked workers.

    python benchmarks/sweep_cell_cost.py                        # both parts, about 3-5 minutes
    python benchmarks/sweep_cell_cost.py --before 23644b3       # + the metrics as they were at that commit
    python benchmarks/sweep_cell_cost.py --before 23644b3 --write   # + the section in benchmarks/RESULTS.md

**Cell cost.** `run_cell` on the cells of `sweeps/reduced_1e4.toml` with d changed (isotropic noise,
r = m = 2: every cell integrates the reduced ODE of THEORY §8), the time inside `numerics.integrate`
apart from the rest (the metrics). `--before COMMIT` loads `numerics/_metrics.py`, `_kappa_rate.py` and
`_stages.py` of that commit from git into this process and runs the same cells through them
(interleaved with the current code, d by d), so the two are measured under the same load.

**Start-up.** `execute` (the sweep engine) in a fresh interpreter, as `cdyn sweep` runs it (parse,
precheck, then the cluster), on 8 cells with 2 spawned workers and with 2 forked ones, alternately.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

from timing import write_results_section

ROOT = Path(__file__).resolve().parent
CONFIG = ROOT.parent / "sweeps" / "reduced_1e4.toml"
MARK_START, MARK_END = "<!-- sweep_cell_cost:start -->", "<!-- sweep_cell_cost:end -->"
OLD_MODULES = ("_metrics", "_kappa_rate", "_stages")


def _spec_text(d: int, cells: int | None = None) -> str:
    text = CONFIG.read_text().replace("d_A = 1024", f"d_A = {d}").replace("d_B = 1024", f"d_B = {d}")
    if cells is not None:  # a small grid of the same instance
        text = text[:text.index("[sweep.grid]")] + '[sweep.grid]\n"problem.lam" = [0.5, 1.0, 1.5, 2.0]\n' \
            '"init.scale" = [1e-4, 1e-3]\n'
    return text


def _old_numerics(commit: str) -> dict[str, object]:
    """The metric functions of `commit`, executed as modules of the package (their relative imports resolve)."""
    mods = {}
    for name in OLD_MODULES:
        src = subprocess.check_output(["git", "-C", str(ROOT.parent), "show", f"{commit}:numerics/{name}.py"], text=True)
        for other in OLD_MODULES:
            src = src.replace(f"from .{other} import", f"from .{other}_old import")
        mod = types.ModuleType(f"cdyn.numerics.{name}_old")
        mod.__package__ = "cdyn.numerics"
        sys.modules[mod.__name__] = mod
        exec(compile(src, f"{commit}:numerics/{name}.py", "exec"), mod.__dict__)  # noqa: S102 - our own git history
        mods[name] = mod
    st, me = mods["_stages"], mods["_metrics"]
    return {"detect_stages": st.detect_stages, "kappa_peak": st.kappa_peak, "kappa_eig": me.kappa_eig,
            "kappa_limit": me.kappa_limit}


def cell_costs(ds: list[int], before: str | None, before_max_d: int, cells: int = 3) -> list[dict]:
    from threadpoolctl import threadpool_limits

    from cdyn import numerics
    from cdyn._sweep_cell import run_cell
    from cdyn._sweep_spec import parse_sweep

    new = {k: getattr(numerics, k) for k in ("detect_stages", "kappa_peak", "kappa_eig", "kappa_limit")}
    old = _old_numerics(before) if before else None
    inside = [0.0]
    integrate = numerics.integrate

    def timed(*a, **k):
        t = time.perf_counter()
        try:
            return integrate(*a, **k)
        finally:
            inside[0] += time.perf_counter() - t

    rows = []
    numerics.integrate = timed
    try:
        with threadpool_limits(limits=1):  # as on a worker
            for d in ds:
                spec = parse_sweep(_spec_text(d))
                for label, fns in (("after", new), ("before", old)):
                    if fns is None or label == "before" and d > before_max_d:
                        continue
                    for k, f in fns.items():
                        setattr(numerics, k, f)
                    run_cell(spec.cell_config(0), spec.init, spec.train)  # compiles once per process
                    walls, ints, lims = [], [], []
                    for i in range(1, cells + 1):
                        inside[0], t = 0.0, time.perf_counter()
                        out = run_cell(spec.cell_config(i), spec.init, spec.train)
                        walls.append(time.perf_counter() - t)
                        ints.append(inside[0])
                        lims.append(out["kappa_limit"])
                    rows.append({"d": d, "code": label, "cell_s": statistics.median(walls),
                                 "integrate_s": statistics.median(ints), "kappa_limit": lims,
                                 "load": os.getloadavg()[0]})
                    print(rows[-1], flush=True)
    finally:
        numerics.integrate = integrate
        for k, f in new.items():
            setattr(numerics, k, f)
    return rows


def _startup_child(fork: bool) -> None:
    """One sweep as `cdyn sweep` runs it, in this fresh interpreter; prints the engine's numbers as JSON."""
    t0 = time.perf_counter()
    from rich.console import Console

    from cdyn._sweep_run import execute, precheck
    from cdyn._sweep_spec import parse_sweep

    spec = parse_sweep(_spec_text(1024, cells=8))
    precheck(spec, (None, None))
    t1 = time.perf_counter()
    info = execute(spec, list(range(spec.n_cells)), lambda res: None, plugins=[], limits=(None, None), workers=2,
                   scheduler=None, console=Console(stderr=True, quiet=True), fork=fork)
    print(json.dumps({"fork": fork, "import_precheck_s": t1 - t0, "startup_s": info["startup"],
                      "sweep_s": info["seconds"], "cell_s": info["cell_seconds"], "cells": info["cells"],
                      "load": os.getloadavg()[0]}))


def startup(repeats: int) -> list[dict]:
    rows = []
    for _ in range(repeats):
        for fork in (False, True):
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--startup-child", "fork" if fork else "spawn"],
                                 capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]) | {"process_s": time.perf_counter() - t0})
            print(rows[-1], flush=True)
    return rows


def _med(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3g} ({min(xs):.3g}-{max(xs):.3g})"


def report(costs: list[dict], starts: list[dict], before: str | None) -> str:
    out = [MARK_START, "### Cost of a reduced-path cell, and the start-up of the embedded cluster: "
           f"`python benchmarks/sweep_cell_cost.py{' --before ' + before if before else ''}`", "",
           "Machine shared with other agents (load average "
           f"{_med([r['load'] for r in costs + starts])} during the runs). One cell of `sweeps/reduced_1e4.toml` "
           "with d changed (r = m = 2, isotropic noise, t_end = 5; median of 3 cells, BLAS at one thread)"
           + (f", the metrics of commit {before} run interleaved with the current ones" if before else "") + ":", "",
           "| d | code | cell | in `integrate` | the rest (metrics) |", "|---|---|---|---|---|"]
    for r in costs:
        out.append(f"| {r['d']} | {r['code']} | {r['cell_s']:.3f} s | {r['integrate_s']:.3f} s "
                   f"| {r['cell_s'] - r['integrate_s']:.3f} s |")
    out += ["", "Before, the metrics were O(d³): `kappa_limit` whitened the d×d Σ_A, Σ_B (two `eigh`) and took the SVD "
            "of the d×d K, `detect_stages` took the SVD of the d×d C, and each d log κ/dt of the peak's root search "
            "ran the full flow on the d×d moments. After: the canonical correlations from the r×r problem "
            "(QᵀA, QᵀB, σ) (`numerics._metrics.isotropic_core`), the singular values of C from its r×r core, and d log κ/dt "
            "through the factors of C and the structured flow (tests/test_metrics_reduced.py checks each against "
            "the dense computation to 1e-10). At d = 256 the cell still forms C (d_A·d_B is at the 2¹⁶-entry "
            "threshold below which `feature_covariance` and `rank_C` keep the dense form for exact rounding).", ""]
    if starts:
        sp = [r for r in starts if not r["fork"]]
        fk = [r for r in starts if r["fork"]]
        out += [f"**Start-up, spawned vs forked workers** (8 cells of d = 1024, 2 workers, {len(sp)} alternating "
                "runs each in a fresh interpreter; *start-up* is until the workers can take tasks, including the "
                "first cell that the driver runs before forking; *sweep* is the engine's whole run):", "",
                "| workers | import + precheck | start-up | sweep | Σ cell walls | whole process |",
                "|---|---|---|---|---|---|"]
        for name, rows in (("spawned", sp), ("forked", fk)):
            out.append(f"| {name} | {_med([r['import_precheck_s'] for r in rows])} s | "
                       f"{_med([r['startup_s'] for r in rows])} s | {_med([r['sweep_s'] for r in rows])} s | "
                       f"{_med([r['cell_s'] for r in rows])} s | {_med([r['process_s'] for r in rows])} s |")
        out += ["", "Spawned workers each import the toolkit and compile the cell's flows again before their "
                "first cell (that time shows in the Σ cell walls); forked ones start with this process's imports "
                "and compiled code."]
    out.append(MARK_END)
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--d", type=int, nargs="+", default=[256, 512, 1024, 2048])
    ap.add_argument("--before", help="a commit whose metrics to run beside the current ones")
    ap.add_argument("--before-max-d", type=int, default=1024, help="run the old metrics up to this d only "
                    "(they take 47 s a cell at d = 2048)")
    ap.add_argument("--repeats", type=int, default=2, help="start-up runs of each kind")
    ap.add_argument("--write", action="store_true", help="replace this section of benchmarks/RESULTS.md")
    ap.add_argument("--render", action="store_true", help="the report from benchmarks/last_run/sweep_cell_cost.json")
    ap.add_argument("--startup-child", choices=["fork", "spawn"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.startup_child:
        _startup_child(a.startup_child == "fork")
        return
    saved = ROOT / "last_run" / "sweep_cell_cost.json"
    if a.render:
        run = json.loads(saved.read_text())
    else:
        before = a.before and subprocess.check_output(["git", "-C", str(ROOT.parent), "rev-parse", "--short",
                                                        a.before], text=True).strip()
        run = {"costs": cell_costs(a.d, before, a.before_max_d), "starts": startup(a.repeats) if a.repeats else [],
               "before": before}
        saved.parent.mkdir(exist_ok=True)
        saved.write_text(json.dumps(run, indent=1))
    text = report(run["costs"], run["starts"], run.get("before"))
    print(text)
    if a.write:
        write_results_section(text, MARK_START, MARK_END, after="<!-- sweep_bench:end -->")


if __name__ == "__main__":
    main()
