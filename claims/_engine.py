r"""The claims engine: run a claim's property with Hypothesis, keep the worst margin, shrink failures.

One implementation serves `cdyn verify` and pytest. For each claim the property

$$\forall\ \text{instance} \sim \text{strategy}:\ \text{check(instance).margin} \ge 0$$

is run by `@given` with a fixed seed and no example database, so a seed gives the same
examples and the same results. `hypothesis.target(-margin)` steers the search towards
small margins. When a check fails Hypothesis shrinks the instance and re-runs the minimal
one last; the engine records that call, which is the shrunk counterexample. Outcomes:

* `verified`: no counterexample in the budget;
* `falsified`: a counterexample (for an `expected=False` claim this is the success);
* `error`: the check raised.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis.reporting import with_reporter
from threadpoolctl import threadpool_limits

from ._claim import CheckResult, Claim, Instance

#: Examples per claim when neither the claim nor the caller says.
DEFAULT_EXAMPLES = 20
#: Cap on details kept per claim for figures and summaries.
MAX_DETAILS = 400

Progress = Callable[[Claim, int, str], None]


class _Counterexample(AssertionError):
    """Raised inside the property when a margin is negative (Hypothesis then shrinks)."""


@dataclass
class ClaimResult:
    """What running one claim gave. `seconds` and `details` are not part of `as_json()` (not deterministic / too big)."""

    claim: Claim
    result: str
    examples: int
    worst_margin: float
    seconds: float
    worst_instance: Instance | None = None
    worst_details: dict[str, Any] = field(default_factory=dict)
    counterexample: dict[str, Any] | None = None
    error: str | None = None
    details: list[dict[str, Any]] = field(default_factory=list, repr=False)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the outcome is the expected one (verified, or falsified for an expected-false claim)."""
        return self.result == ("verified" if self.claim.expected else "falsified")

    def as_json(self) -> dict[str, Any]:
        c = self.claim
        return {
            "id": c.id, "title": c.title, "expected": c.expected, "result": self.result, "ok": self.ok,
            "examples": self.examples, "worst_margin": self.worst_margin, "worst_instance": self.worst_instance,
            "worst_details": self.worst_details, "counterexample": self.counterexample, "error": self.error,
            "summary": self.summary, "statement": c.statement, "hypotheses": list(c.hypotheses),
            "margin_meaning": c.margin_meaning,
        }


def _key(instance: Instance) -> str:
    return json.dumps(instance, sort_keys=True)


def counterexample_record(claim: Claim, instance: Instance, res: CheckResult, seed: int) -> dict[str, Any]:
    """The JSON saved for a counterexample: enough to replay it exactly (`cdyn verify --replay`).

    `"plugin"` is the origin of the plugin that registered the claim (None for a built-in
    claim), so replay can say what to load; replay never loads code named in the JSON.
    """
    from ._registry import claim_origin

    return {
        "claim": claim.id, "title": claim.title, "expected": claim.expected, "statement": claim.statement,
        "hypotheses": list(claim.hypotheses), "seed": seed, "instance": instance,
        "init": instance.get("init"), "horizon": instance.get("horizon"),
        "margin": float(res.margin), "details": res.details, "hypothesis_version": hypothesis.__version__,
        "plugin": claim_origin(claim.id),
    }


def run_claim(claim: Claim, *, examples: int | None = None, seed: int = 0,
              progress: Progress | None = None) -> ClaimResult:
    """Run one claim's property through Hypothesis (deterministic for a given seed)."""
    n_examples = int(examples or claim.examples or DEFAULT_EXAMPLES)
    memo: dict[str, CheckResult | BaseException] = {}
    st: dict[str, Any] = {"calls": 0, "worst": (math.inf, None, {}), "fail": None, "fail_at": None,
                          "error": None, "details": []}

    def evaluate(instance: Instance) -> CheckResult:
        key = _key(instance)
        if key in memo:
            hit = memo[key]
            if isinstance(hit, BaseException):
                raise hit
            return hit
        st["calls"] += 1
        try:
            res = claim.check(instance)
            if not isinstance(res, CheckResult) or not math.isfinite(float(res.margin)):
                raise ArithmeticError(f"check returned a non-finite margin: {getattr(res, 'margin', res)!r}")
        except Exception as err:  # noqa: BLE001 -- any failure of a check is an `error` outcome
            memo[key] = err
            st["error"] = (instance, f"{type(err).__name__}: {err}")
            raise
        memo[key] = res
        if res.margin < st["worst"][0]:
            st["worst"] = (float(res.margin), instance, res.details)
        if len(st["details"]) < MAX_DETAILS:
            st["details"].append(res.details)
        if progress is not None:
            progress(claim, st["calls"], "shrinking" if st["fail_at"] is not None else "searching")
        return res

    def prop(instance: Instance) -> None:
        if (st["fail_at"] is not None and _key(instance) not in memo
                and st["calls"] - st["fail_at"] >= claim.shrink_budget):
            return  # shrink budget spent: unseen candidates count as passing, seen ones replay
        res = evaluate(instance)
        hypothesis.target(max(-1e6, min(1e6, -float(res.margin))), label="-margin")
        if res.margin < 0:
            if st["fail_at"] is None:
                st["fail_at"] = st["calls"]
            st["fail"] = (instance, res)
            raise _Counterexample(f"{claim.id}: margin {res.margin:.3g}")

    test = settings(
        max_examples=n_examples, database=None, deadline=None, derandomize=False, print_blob=False,
        phases=(Phase.generate, Phase.target, Phase.shrink), report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
    )(hypothesis.seed(seed)(given(claim.strategy())(prop)))

    t0 = time.perf_counter()
    outcome, error, record = "verified", None, None
    with threadpool_limits(limits=1), with_reporter(lambda _msg: None):
        try:
            test()
        except _Counterexample:
            outcome = "falsified"
            inst, res = st["fail"]
            record = counterexample_record(claim, inst, res, seed)
        except Exception as err:  # noqa: BLE001
            outcome = "error"
            error = st["error"][1] if st["error"] else f"{type(err).__name__}: {err}"
    seconds = time.perf_counter() - t0
    worst_m, worst_inst, worst_det = st["worst"]
    summary = {}
    if claim.summarize is not None and st["details"]:
        summary = claim.summarize(st["details"])
    return ClaimResult(claim, outcome, st["calls"], worst_m if math.isfinite(worst_m) else float("nan"), seconds,
                       worst_inst, worst_det, record, error, st["details"], summary)


def run_claims(claims: list[Claim], *, examples: int | None = None, seed: int = 0,
               progress: Progress | None = None) -> list[ClaimResult]:
    """Run each claim in order with the same seed."""
    return [run_claim(c, examples=examples, seed=seed, progress=progress) for c in claims]


def replay(record: dict[str, Any]) -> tuple[Claim, CheckResult]:
    """Re-run the check of a saved counterexample on its instance."""
    from ._registry import get_claim

    if not isinstance(record, dict) or "claim" not in record or "instance" not in record:
        raise ValueError("replay: expected a counterexample JSON with 'claim' and 'instance'")
    claim = get_claim(str(record["claim"]))
    with threadpool_limits(limits=1):
        return claim, claim.check(record["instance"])
