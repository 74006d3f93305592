"""Benchmarks of issue 5: `python benchmarks/run.py [--quick] [--naive-4096] [--only codegen,scaling,...]`.

Prints one table (case, ours, baseline, ratio = ours / baseline, RHS evaluations) and
writes `scaling.png` (the scaling curve), `last_run.md` (the table and the machine) and
`last_run.json`: a full run next to this file (the committed `scaling.png` is a full run's),
a `--quick` run into `benchmarks/last_run/` (git-ignored), so it never overwrites the
committed figure; `--out DIR` chooses the place. Every ratio is measured in the same run, as a
median over repeats, with calls of the compared functions interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_codegen  # noqa: E402
import bench_derive  # noqa: E402
import bench_scaling  # noqa: E402
import bench_stiff  # noqa: E402
import bench_threads  # noqa: E402
from timing import machine, table  # noqa: E402

SECTIONS = ("codegen", "threads", "scaling", "target", "stiff", "derive")


def plot(curve: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    style = {"full": ("tab:red", "o"), "structured": ("tab:blue", "s"), "reduced": ("tab:green", "^")}
    for ax, key, title in ((axes[0], "rhs", "one right-hand side (1 thread)"),
                           (axes[1], "integrate", "small init → convergence (DOP853, grad_tol 1e-6)")):
        for name, (color, marker) in style.items():
            pts = sorted(curve[key][name].items())
            if pts:
                ax.loglog([d for d, _ in pts], [t for _, t in pts], marker=marker, color=color, label=name)
        ds = curve["d"]
        ax.set_xticks(ds, [str(d) for d in ds])
        ax.set_xlabel("input dimension d (= d_A = d_B), r = m = 8")
        ax.set_ylabel("seconds (median)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("Cost of the flow vs d: full O(m d²), structured O(m d (r+k)), reduced independent of d")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, no d=16384, no naive full at d=1024")
    ap.add_argument("--naive-4096", action="store_true",
                    help="also run the naive full-state integration at d=4096, r=m=32 (about 10 minutes)")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {', '.join(SECTIONS)}")
    ap.add_argument("--out", type=Path, default=None,
                    help="directory for scaling.png and last_run.* (default: benchmarks/, or benchmarks/last_run/ "
                         "with --quick)")
    args = ap.parse_args(argv)
    if args.out is None:
        args.out = HERE / "last_run" if args.quick else HERE
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        ap.error(f"--only: unknown section {bad[0]!r}; choose from {', '.join(SECTIONS)}")
    print(f"writing to {args.out}", flush=True)
    info = machine()
    print("machine:", json.dumps(info), flush=True)
    rows, extra, t0 = [], {}, time.time()
    for name in only:
        t = time.time()
        print(f"== {name} ...", flush=True)
        if name == "codegen":
            rows += bench_codegen.run(args.quick)
        elif name == "threads":
            rows += bench_threads.run(args.quick)
        elif name == "scaling":
            r, curve = bench_scaling.run(args.quick)
            rows += r
            extra["curve"] = curve
            args.out.mkdir(parents=True, exist_ok=True)
            plot(curve, args.out / "scaling.png")
        elif name == "target":
            rows += bench_scaling.run_target(args.quick, args.naive_4096)
        elif name == "stiff":
            r, res = bench_stiff.run(args.quick)
            rows += r
            extra["stiff"] = res
        elif name == "derive":
            rows += bench_derive.run(args.quick)
        print(f"   {time.time() - t:.0f} s", flush=True)
    info["loadavg_end"] = os.getloadavg()
    info["wall_s"] = round(time.time() - t0, 1)
    print()
    print(table(rows))
    args.out.mkdir(parents=True, exist_ok=True)
    head = f"Machine: `{json.dumps(info)}`\n\nratio = ours / baseline (< 1: ours is faster)\n\n"
    (args.out / "last_run.md").write_text(head + table(rows, True) + "\n")
    (args.out / "last_run.json").write_text(json.dumps(
        {"machine": info, "rows": [r.as_dict() for r in rows], **extra}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
