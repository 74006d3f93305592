r"""The claims engine: run a claim's property with Hypothesis, keep the worst margin, shrink failures.

One implementation serves `cdyn verify` and pytest. For each claim the property

$$\forall\ \text{instance} \sim \text{strategy}:\ \text{check(instance).margin} \ge 0$$

is run by `@given` with a fixed seed and no example database, so a seed gives the same
examples and the same results. `hypothesis.target(-margin)` steers the search towards
small margins. When a check fails Hypothesis shrinks the instance and re-runs the minimal
one last; the engine records that call, which is the shrunk counterexample. Outcomes:

* `verified`: no counterexample in the budget;
* `falsified`: a counterexample (for an `expected=False` claim this is the success); a
  check whose margin is not finite (nan, ±inf: a run that blew up) has failed too, and its
  record says why (`reason`); such a margin ranks below every finite one;
* `error`: the check raised (exceptions only).

**Second stage.** A claim that declares a `Space` (`claims._space`) is then searched
locally (`claims._local`): Nelder–Mead over the box from the worst Hypothesis examples,
within `local_budget` extra checks. `found_by` says which stage found the counterexample
and `checks` counts each stage's checks. **Isolation.** Each run swaps out Hypothesis's
pool of constants from local modules (`claims._isolation`) and starts from Hypothesis's
default settings, not the caller's profile, so a seed gives the same examples in pytest,
in the CLI and on a second run in one process.
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

from cdyn.numerics._autochoice import limit_threads

from ._claim import CheckResult, Claim, Instance
from ._isolation import isolated_constants
from ._local import LOCAL_BUDGET, LOCAL_STARTS, fails, local_search, order_key

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
    #: Which stage found the counterexample: "hypothesis", "local-search" (None: none found).
    found_by: str | None = None
    #: Checks made by each stage ("hypothesis", "local_search"); their sum is `examples`.
    checks: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the outcome is the expected one (verified, or falsified for an expected-false claim)."""
        return self.result == ("verified" if self.claim.expected else "falsified")

    def as_json(self) -> dict[str, Any]:
        c = self.claim
        return {
            "id": c.id, "title": c.title, "expected": c.expected, "result": self.result, "ok": self.ok,
            "examples": self.examples, "worst_margin": margin_json(self.worst_margin),
            "worst_instance": self.worst_instance, "found_by": self.found_by, "checks": dict(self.checks),
            "worst_details": self.worst_details, "counterexample": self.counterexample, "error": self.error,
            "summary": self.summary, "statement": c.statement, "hypotheses": list(c.hypotheses),
            "margin_meaning": c.margin_meaning,
        }


def _key(instance: Instance) -> str:
    return json.dumps(instance, sort_keys=True)


def margin_json(margin: float) -> float | str:
    """A margin as JSON: the float, or "nan" / "inf" / "-inf" (strict JSON has no non-finite numbers)."""
    m = float(margin)
    return m if math.isfinite(m) else str(m)


def margins_equal(stored: Any, margin: float) -> bool:
    """Does a stored margin (float, or "nan"/"inf"/"-inf") equal a replayed one? nan equals nan here."""
    if isinstance(stored, bool) or not isinstance(stored, (int, float, str)):
        return False
    try:
        s = float(stored)
    except ValueError:
        return False
    m = float(margin)
    return (math.isnan(s) and math.isnan(m)) or s == m


def _reason(res: CheckResult) -> str | None:
    """Why a non-finite margin failed: the check's own `details["reason"]`, else its details."""
    m = float(res.margin)
    if math.isfinite(m):
        return None
    why = res.details.get("reason") if isinstance(res.details, dict) else None
    if why is None:
        why = json.dumps(res.details, sort_keys=True, default=str)[:300]
    return f"margin is {m}: {why}"


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
        "margin": margin_json(res.margin), "reason": _reason(res), "details": res.details,
        "hypothesis_version": hypothesis.__version__,
        "plugin": claim_origin(claim.id),
    }


def run_claim(claim: Claim, *, examples: int | None = None, seed: int = 0,
              progress: Progress | None = None, local_budget: int | None = None) -> ClaimResult:
    """Run one claim: Hypothesis, then (claims with a `space`) the local search; deterministic for a seed.

    `local_budget` caps the second stage's checks (default: the claim's, else `LOCAL_BUDGET`; 0 turns it off).
    """
    n_examples = int(examples or claim.examples or DEFAULT_EXAMPLES)
    memo: dict[str, CheckResult | BaseException] = {}
    st: dict[str, Any] = {"calls": 0, "worst": (math.inf, math.nan, None, {}), "fail": None, "fail_at": None,
                          "error": None, "details": [], "phase": "searching"}

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
            if not isinstance(res, CheckResult):
                raise TypeError(f"check returned {type(res).__name__}, expected CheckResult")
            float(res.margin)  # a margin that is not a number at all is an error, not a counterexample
        except Exception as err:  # noqa: BLE001 -- any exception of a check is an `error` outcome
            memo[key] = err
            st["error"] = (instance, f"{type(err).__name__}: {err}")
            raise
        memo[key] = res
        if order_key(res.margin) < st["worst"][0]:
            st["worst"] = (order_key(res.margin), float(res.margin), instance, res.details)
        if len(st["details"]) < MAX_DETAILS:
            st["details"].append(res.details)
        if progress is not None:
            progress(claim, st["calls"], "shrinking" if st["fail_at"] is not None else st["phase"])
        return res

    def prop(instance: Instance) -> None:
        if (st["fail_at"] is not None and _key(instance) not in memo
                and st["calls"] - st["fail_at"] >= claim.shrink_budget):
            return  # shrink budget spent: unseen candidates count as passing, seen ones replay
        res = evaluate(instance)
        hypothesis.target(max(-1e6, min(1e6, -order_key(res.margin))), label="-margin")
        if fails(res):
            if st["fail_at"] is None:
                st["fail_at"] = st["calls"]
            st["fail"] = (instance, res)
            raise _Counterexample(f"{claim.id}: margin {float(res.margin):.3g}")

    # Parent: Hypothesis's defaults, not the caller's profile (pytest's `ci` profile must not change the run).
    test = settings(
        settings.get_profile("default"),
        max_examples=n_examples, database=None, deadline=None, derandomize=False, print_blob=False,
        phases=(Phase.generate, Phase.target, Phase.shrink), report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
    )(hypothesis.seed(seed)(given(claim.strategy())(prop)))

    t0 = time.perf_counter()
    outcome, error, found, found_by = "verified", None, None, None
    with limit_threads(1), with_reporter(lambda _msg: None), isolated_constants():
        try:
            test()
        except _Counterexample:
            outcome, found, found_by = "falsified", st["fail"], "hypothesis"
        except Exception as err:  # noqa: BLE001
            outcome = "error"
            error = st["error"][1] if st["error"] else f"{type(err).__name__}: {err}"
    n_hyp = st["calls"]
    budget = LOCAL_BUDGET if local_budget is None and claim.local_budget is None else int(
        local_budget if local_budget is not None else claim.local_budget)
    if outcome == "verified" and claim.space is not None and budget > 0:
        st["phase"] = "local search"
        try:
            with limit_threads(1):
                found = local_search(claim.space, evaluate, _starts(claim, memo), budget,
                                     spent=lambda: st["calls"] - n_hyp)
        except Exception as err:  # noqa: BLE001 -- a check that raises here is an error too
            outcome = "error"
            error = st["error"][1] if st["error"] else f"{type(err).__name__}: {err}"
        if found is not None:
            outcome, found_by = "falsified", "local-search"
    record = None
    if found is not None:
        record = counterexample_record(claim, found[0], found[1], seed)
        record["found_by"] = found_by
    seconds = time.perf_counter() - t0
    _, worst_m, worst_inst, worst_det = st["worst"]
    summary = {}
    if claim.summarize is not None and st["details"]:
        summary = claim.summarize(st["details"])
    return ClaimResult(claim, outcome, st["calls"], worst_m, seconds, worst_inst, worst_det, record, error,
                       st["details"], summary, found_by, {"hypothesis": n_hyp, "local_search": st["calls"] - n_hyp})


def _starts(claim: Claim, memo: dict[str, CheckResult | BaseException]) -> list[dict[str, float]]:
    """The box points of the worst distinct examples Hypothesis checked (ties broken by the point)."""
    assert claim.space is not None
    ranked = []
    for key, res in memo.items():
        if isinstance(res, CheckResult):
            point = claim.space.values(json.loads(key))
            if point is not None:
                ranked.append((order_key(res.margin), key, point))
    ranked.sort(key=lambda t: (t[0], t[1]))
    return [p for _, _, p in ranked[:LOCAL_STARTS]]


def run_claims(claims: list[Claim], *, examples: int | None = None, seed: int = 0,
               progress: Progress | None = None, client: Any = None) -> list[ClaimResult]:
    """Run each claim in order with the same seed.

    With a `distributed.Client` (`cdyn._cluster.dask_client()`), one task per claim on its
    workers (`claims._distributed`): the same results, in the same order. A claim or term
    registered in this process that cannot be sent there is refused (`ValueError` naming it).
    """
    if client is not None:
        from ._distributed import run_claims_distributed

        return run_claims_distributed(claims, client, examples=examples, seed=seed, progress=progress)
    return [run_claim(c, examples=examples, seed=seed, progress=progress) for c in claims]


def replay(record: dict[str, Any]) -> tuple[Claim, CheckResult]:
    """Re-run the check of a saved counterexample on its instance.

    The record is untrusted (`claims._replay`): JSON types and finite numbers only, the record
    schema, the claim's instance schema, then the check under the resource budget; anything
    wrong is one `ValueError`, `replay: <field>: <what is wrong>`.
    """
    from ._registry import get_claim
    from ._replay import RECORD_SCHEMA, ReplayError, check_schema, check_tree, guarded_check, validate_instance

    check_tree(record, strict=False)
    check_schema(record, RECORD_SCHEMA, "")
    check_tree(record["instance"], "instance")
    try:
        claim = get_claim(record["claim"])
    except ValueError as err:
        raise ReplayError("claim", str(err).removeprefix("claims: ")) from None
    # What a file would hold (tuples become lists), so a record replays the same from Python or JSON.
    instance = validate_instance(claim, json.loads(json.dumps(record["instance"])))
    with limit_threads(1):
        return claim, guarded_check(claim, instance)
