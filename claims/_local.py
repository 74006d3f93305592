r"""The falsifier's second stage: a bounded local search of the margin over a claim's `Space`.

Hypothesis samples the instance space and `target()` nudges it towards small margins, but
a few dozen examples land in a region that fills under 1% of the box by luck only. The
margin, though, is a continuous function of the box coordinates for the claims here (it is
computed from a smooth flow), so a counterexample region that is thin is still *downhill*
from the worst examples Hypothesis saw. Stage 2 minimises

$$u \in [0,1]^n \;\mapsto\; \text{margin}\big(\text{check}(\text{build}(\theta(u)))\big)$$

with Powell's method (`scipy.optimize.minimize`, bounds $[0,1]^n$, so every point it
evaluates is inside the declared box and satisfies the claim's hypotheses by construction),
from each of the few worst Hypothesis examples in turn, and stops at the first failing
margin. Powell needs no gradient (a check is an ODE run, not differentiable code) and its
first sweep is a bounded Brent line search along each coordinate: a thin band that crosses
a coordinate line is reached by one such search (about 10 checks), and a corner by walking
each coordinate to its bound. Nelder–Mead (initial simplex of edge 0.2, pointing into the
box) was tried first and was weaker: on the two thin claims of `c5_thin`/`c9_thin`, seeds
0–9, it falsified 9/10 and 1/10 (and still 9/10 and 1/10 with 100 checks), Powell 10/10 and
10/10 with 60 (`python benchmarks/thin_claims.py --hit-rate` measures the latter).

A counterexample found this way has no Hypothesis choice sequence to shrink, so it is
*simplified* instead: each parameter in turn is rounded to the fewest significant digits
(1, 2, …, 8) that keep the margin negative. Every check of this stage, search and
simplification, counts against one budget, reported as `checks["local_search"]`.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy.optimize import minimize

from ._claim import CheckResult, Instance
from ._space import Space

#: Extra checks per claim at the default budget (search + simplification).
LOCAL_BUDGET = 60
#: How many of the worst Hypothesis examples to start from.
LOCAL_STARTS = 3
#: Checks kept back from the search for simplifying what it finds.
SIMPLIFY_RESERVE = 16

Evaluate = Callable[[Instance], CheckResult]


def fails(res: CheckResult) -> bool:
    """A negative or non-finite margin is a counterexample (`not m >= 0` is also true for nan)."""
    return not float(res.margin) >= 0


def order_key(margin: float) -> float:
    """Margin used to rank examples: a non-finite margin ranks below every finite one."""
    m = float(margin)
    return m if math.isfinite(m) else -math.inf


class _Stop(Exception):
    """Leaves the optimiser: a counterexample, or this start's share of the budget spent."""


def local_search(space: Space, evaluate: Evaluate, starts: list[dict[str, float]], budget: int,
                 spent: Callable[[], int]) -> tuple[Instance, CheckResult] | None:
    """Minimise the margin from each start in turn; the first failing instance, or None.

    `spent()` is the number of checks this stage has made so far (memoised repeats are free).
    """
    found: list[tuple[Instance, CheckResult]] = []
    search_budget = budget - min(SIMPLIFY_RESERVE, budget // 4)
    starts = starts[:LOCAL_STARTS]
    for i, start in enumerate(starts):
        share = math.ceil((search_budget - spent()) / (len(starts) - i))
        limit = spent() + share
        if share <= 0:
            break

        def objective(u: np.ndarray) -> float:
            if spent() >= limit:
                raise _Stop
            inst = space.instance(space.from_unit(u))
            res = evaluate(inst)
            if fails(res):
                found.append((inst, res))
                raise _Stop
            return float(res.margin)

        u0 = space.to_unit(start)
        try:
            minimize(objective, u0, method="Powell", bounds=[(0.0, 1.0)] * u0.size,
                     options={"xtol": 1e-4, "ftol": 1e-12, "maxfev": 10 * budget})
        except _Stop:
            pass
        if found:
            return simplify(space, evaluate, *found[0], budget=budget, spent=spent)
    return None


def simplify(space: Space, evaluate: Evaluate, inst: Instance, res: CheckResult, *, budget: int,
             spent: Callable[[], int]) -> tuple[Instance, CheckResult]:
    """Round each parameter to the fewest significant digits that keep the counterexample."""
    values = space.values(inst)
    if values is None:
        return inst, res
    for p in space.params:
        for digits in range(1, 9):
            v = float(f"{values[p.name]:.{digits}g}")
            if v == values[p.name]:
                break
            if not p.lo <= v <= p.hi:
                continue
            if spent() >= budget:
                return inst, res
            cand = {**values, p.name: v}
            c_inst = space.instance(cand)
            c_res = evaluate(c_inst)
            if fails(c_res):
                values, inst, res = cand, c_inst, c_res
                break
    return inst, res
