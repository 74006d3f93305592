"""Timing helpers: interleaved medians, result rows, the machine's description."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np


@dataclass
class Row:
    """One line of the table: `ours` and `baseline` in seconds, `ratio` = ours / baseline."""

    section: str
    case: str
    ours: float
    baseline: float | None
    evals: str
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if self.baseline in (None, 0) else self.ours / self.baseline

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


def interleaved_medians(fns: Sequence[Callable[[], object]], repeats: int, number: int = 1) -> list[float]:
    """Median seconds per call of each function; calls alternate so load drift hits all alike."""
    times: list[list[float]] = [[] for _ in fns]
    for fn in fns:  # warm-up (caches, first-call allocation)
        fn()
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            for _ in range(number):
                fn()
            times[i].append((time.perf_counter() - t) / number)
    return [float(np.median(t)) for t in times]


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """(median seconds, last result) of `repeats` calls."""
    out, ts = None, []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), out


def fmt_time(s: float | None) -> str:
    if s is None:
        return "—"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def table(rows: Sequence[Row], markdown: bool = False) -> str:
    head = ["section", "case", "ours", "baseline", "ratio", "RHS evals", "note"]
    body = [[r.section, r.case, fmt_time(r.ours), fmt_time(r.baseline),
             "—" if r.ratio is None else f"{r.ratio:.3g}×", r.evals, r.note] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(b) + " |" for b in body])
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*["-" * w for w in widths]), *(fmt.format(*b) for b in body)])


def machine() -> dict:
    """CPU, cores, memory, library versions, BLAS, load: what the ratios were measured on."""
    import scipy
    import sympy
    from threadpoolctl import threadpool_info

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    mem = next((ln.split()[1] for ln in open("/proc/meminfo") if ln.startswith("MemTotal")), "0")
    blas = [f"{i['internal_api']} {i['version']} ({i['num_threads']} threads)" for i in threadpool_info()]
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_GiB": round(int(mem) / 2**20, 1),
            "python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "sympy": sympy.__version__, "blas": ", ".join(blas), "loadavg_start": os.getloadavg()}


def write_results_section(text: str, start: str, end: str, after: str | None = None) -> None:
    """Replace the part of RESULTS.md between the markers `start` and `end` by `text` (which holds both);
    a first section goes right after the marker `after` when it is there, else at the end of the file."""
    from pathlib import Path

    path = Path(__file__).resolve().parent / "RESULTS.md"
    old = path.read_text(encoding="utf-8")
    if start in old:
        head, rest = old.split(start, 1)
        new = head + text + rest.split(end, 1)[1].lstrip("\n")
    elif after is not None and after in old:
        new = old.replace(after, after + "\n\n" + text.rstrip("\n"), 1)
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new, encoding="utf-8")
