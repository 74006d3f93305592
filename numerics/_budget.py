r"""Resource budgets, checked from the sizes *before* anything is allocated or run.

A run's memory is estimated from the arrays it will hold (float64, 8 bytes an entry): the data
matrices, the $d\times d$ moments when they are formed, the stored samples
($n_{points}\times$ state), a mini-batch and its $n\times n$ logits, a fixed data set. Its number of
steps is $t_{end}/\eta$ (or `steps`, or `epochs`$\cdot n_{data}/n$), computed as a float so that
$\eta = 10^{-300}$ is refused rather than overflowing. Above the limit the call raises a
`ValueError` that names the field with the largest share and the estimate.

The limits are module-level defaults (`MAX_MEMORY`, `MAX_STEPS`, and `MAX_NFEV` right-hand-side
evaluations per `integrate` run, which ends `failed` beyond it); `budget(...)` raises or lowers
them for a block (the CLI's `--max-memory` / `--max-steps`).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

from ._validate import as_real

#: Default limits: 4 GiB of arrays, 10⁷ gradient steps (minutes at the smallest sizes).
MAX_MEMORY: float = 4 * 2.0**30
MAX_STEPS: float = 1e7
#: Right-hand-side evaluations of one `integrate` run (tens of seconds at small sizes).
MAX_NFEV: float = 1e6
_limits = {"memory": MAX_MEMORY, "steps": MAX_STEPS, "nfev": MAX_NFEV}
FLOAT = 8


def fmt_bytes(n: float) -> str:
    """Bytes in binary units: `7.28 TiB`."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.0f} B" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


@contextmanager
def budget(max_memory: float | None = None, max_steps: float | None = None,
           max_nfev: float | None = None) -> Iterator[None]:
    """Change the memory limit (bytes), the step limit and the solver's evaluation limit within a block."""
    old = dict(_limits)
    if max_nfev is not None:
        _limits["nfev"] = as_real("max_nfev", max_nfev, low=0.0, strict=True)
    if max_memory is not None:
        _limits["memory"] = as_real("max_memory", max_memory, low=0.0, strict=True)
    if max_steps is not None:
        _limits["steps"] = as_real("max_steps", max_steps, low=0.0, strict=True)
    try:
        yield
    finally:
        _limits.update(old)


def nfev_limit() -> float:
    """Right-hand-side evaluations allowed to one `integrate` run."""
    return _limits["nfev"]


def limits() -> tuple[float, float]:
    """The current (memory in bytes, steps) limits."""
    return _limits["memory"], _limits["steps"]


def check_memory(parts: dict[str, float], what: str = "this run") -> float:
    """Raise a ValueError naming the biggest part when the total of `parts` (bytes) is over the limit."""
    total = float(sum(parts.values()))
    if total > _limits["memory"]:
        field = max(parts, key=lambda k: parts[k])
        raise ValueError(f"{field}: {what} would need about {fmt_bytes(total)} of memory "
                         f"({fmt_bytes(parts[field])} from {field}), above the limit of {fmt_bytes(_limits['memory'])} "
                         "(raise it with max_memory / --max-memory)")
    return total


def check_steps(field: str, steps: float, detail: str = "") -> int:
    """The step count as an int, or a ValueError naming `field` when it is over the limit."""
    if not math.isfinite(steps) or steps > _limits["steps"]:
        raise ValueError(f"{field}: {detail or 'the run'} is {steps:.3g} steps, above the limit of "
                         f"{_limits['steps']:.3g} (raise it with max_steps / --max-steps)")
    return int(steps)


def gd_steps(t_end: float, eta: float) -> int:
    """$\\max(1, \\mathrm{round}(t_{end}/\\eta))$, checked against the limit before it is an int."""
    ratio = t_end / eta
    return max(1, check_steps("eta", round(ratio) if math.isfinite(ratio) else ratio,
                              f"t_end/eta = {t_end:g}/{eta:g}"))


#: The metrics of one sample (κ, eigenvalue κ, per-view κ, loss, Q, ‖∇L‖: four small
#: decompositions, a loss and a gradient) cost 3–10 right-hand-side evaluations of the same
#: instance, medians 4–8 from d = 6 to 256 (`python benchmarks/series_cost.py`); charged at 10.
EVALS_PER_SAMPLE = 10


def check_samples(n_points: float, runs: int = 1, field: str = "n_points") -> None:
    """Refuse, before any work, more samples than the evaluation budget can measure: each sample of
    each of `runs` runs costs about `EVALS_PER_SAMPLE` right-hand-side evaluations (its metrics),
    charged to the same budget as a solver run's evaluations."""
    need = float(n_points) * runs * EVALS_PER_SAMPLE
    if not need <= _limits["nfev"]:
        raise ValueError(f"{field}: measuring κ, the loss and the gradient at {float(n_points):.6g} samples × {runs} "
                         f"run(s) costs about {need:.3g} right-hand-side evaluations ({EVALS_PER_SAMPLE} a sample), "
                         f"above the budget of {_limits['nfev']:.3g}; lower {field} (the solver's accuracy does not "
                         "depend on it) or raise the budget with max_steps / --max-steps")


def combine(*parts: dict[str, float]) -> dict[str, float]:
    """Add estimates field by field."""
    out: dict[str, float] = {}
    for part in parts:
        for k, v in part.items():
            out[k] = out.get(k, 0.0) + v
    return out


_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text: str, field: str = "max_memory") -> float:
    """`"8G"`, `"512MiB"`, `"1e10"` → bytes (binary units)."""
    t = str(text).strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1] if t and t[-1] in _UNITS else ""
    try:
        value = float(t[: len(t) - len(unit)]) * _UNITS[unit]
    except ValueError:
        raise ValueError(f"{field}: expected a size such as 8G, 512M or 1e10 (bytes), got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{field}: must be a positive size, got {text!r}")
    return value


def problem_memory(d_A: int, d_B: int, r: int, noise_A: bool, noise_B: bool) -> dict[str, float]:
    """`random_problem`: two d×r bases and factors, and $A_\\xi = \\sigma I$ (d×d) when there is noise."""
    return {"d_A": FLOAT * (2.0 * d_A * r + (float(d_A) ** 2 if noise_A else 0.0)),
            "d_B": FLOAT * (2.0 * d_B * r + (float(d_B) ** 2 if noise_B else 0.0))}


def moments_memory(d_A: int, d_B: int) -> dict[str, float]:
    """$\\Sigma_A$, $\\Sigma_B$, $C$ as dense matrices (with one temporary of each)."""
    return {"d_A": 2.0 * FLOAT * (float(d_A) ** 2 + 0.5 * d_A * d_B),
            "d_B": 2.0 * FLOAT * (float(d_B) ** 2 + 0.5 * d_A * d_B)}


def samples_memory(n_points: float, m: int, d_A: int, d_B: int, runs: int = 1) -> dict[str, float]:
    """`n_points` stored snapshots of $(W_A, W_B)$, per run, charged to the largest factor."""
    factors = {"n_points": float(n_points), "m": float(m), "d_A": float(d_A), "d_B": float(d_B)}
    return {max(factors, key=lambda k: factors[k]): FLOAT * float(n_points) * m * (d_A + d_B) * runs}


def sgd_memory(batch: int, n_data: int | None, d_A: int, d_B: int, r: int) -> dict[str, float]:
    """A buffer of fresh pairs (at least 8192 rows), the batch logits (n×n), or a fixed data set."""
    rows = float(max(batch, 8192)) if n_data is None else float(batch)
    parts = {"batch": FLOAT * (rows * (d_A + d_B + r) + 3.0 * float(batch) ** 2)}
    if n_data is not None:
        parts["n_data"] = FLOAT * float(n_data) * (d_A + d_B + r)
    return parts


class HorizonWatch:
    r"""Ends a solver run early when, at its recent step sizes, $t_{end}$ is out of reach of the budget.

    Every `window` accepted steps, the mean step of the last window $h$ is compared with that of
    the oldest window kept (up to `history` windows back, $k$ windows): the step size grows by
    $g = (h/h_0)^{1/(k\,\text{window})}$ a step, counted only when it at least doubled (jitter of
    an explicit method at its stability limit is not growth). With $R = t_{end} - t$ left, a step
    size growing geometrically from $h$ reaches it in
    $$n = \log\bigl(1 + R\,(g-1)/h\bigr)/\log g \quad (n = R/h \text{ for } g = 1)$$
    steps, each costing the evaluations measured over the last window. Beyond `factor` times the
    evaluation budget the run cannot end at $t_{end}$ however the step size behaves within
    reason: an explicit method at its stability limit on a stiff flow ($h \sim 1/\lambda_{max}$,
    and $\lambda_{max}$ grows like $\|W\|^2$ for the quartic `neg` term), or $t_{end} = 10^{300}$.
    Stopping after a few hundred steps instead of at the budget is the difference between a
    fraction of a second and a minute."""

    def __init__(self, t_end: float, window: int = 100, factor: float = 100.0, history: int = 10,
                 reach: float = math.inf):
        self.t_end, self.window, self.factor, self.history = float(t_end), window, factor, history
        #: With a convergence test the run may stop long before t_end: it is projected to at most
        #: `reach` past the current time (a generous multiple of the flow's slowest time scale).
        self.reach = float(reach)
        self.ts: list[float] = []
        self.evals: list[int] = []

    def accepted(self, t: float, evals: int) -> str | None:
        """Record an accepted step; the reason to stop, or None."""
        if self.ts and t <= self.ts[-1]:
            return None  # an event's root search inside the last step, not a new step
        self.ts.append(float(t))
        self.evals.append(int(evals))
        w, n = self.window, len(self.ts) - 1
        if n < 2 * w or n % w:
            return None
        keep = self.history * w + 1
        if len(self.ts) > keep:
            del self.ts[:-keep], self.evals[:-keep]
        ts, ev = self.ts, self.evals
        k = (len(ts) - 1) // w - 1  # windows between the oldest kept and the last
        h0, h = (ts[w] - ts[0]) / w, (ts[-1] - ts[-1 - w]) / w
        per_step = max(1.0, (ev[-1] - ev[-1 - w]) / w)
        target = min(self.t_end, ts[-1] + self.reach)
        left = target - ts[-1]
        if h <= 0.0:
            steps = math.inf
        elif h0 > 0 and h >= 2.0 * h0:
            g = (h / h0) ** (1.0 / (k * w))
            steps = math.log1p(left * (g - 1.0) / h) / math.log(g)
        else:
            steps = left / h
        need = steps * per_step
        if need <= self.factor * _limits["nfev"]:
            return None
        what = f"t_end = {self.t_end:.4g}" if target == self.t_end else f"t = {target:.4g} (the data's time scale)"
        return (f"{what} is out of reach: the step size has settled near h = {h:.3g} at "
                f"t={ts[-1]:.4g} ({per_step:.3g} evaluations a step over the last {w} steps), so the remaining "
                f"{left:.3g} time units need about {need:.3g} right-hand-side evaluations, over {self.factor:g}× "
                f"the budget of {_limits['nfev']:.3g} (numerics.budget(max_nfev=...) / --max-steps)")
