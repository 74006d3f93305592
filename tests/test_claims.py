"""The claims C5–C9 through the same engine `cdyn verify` uses, at a small budget; and the engine itself.

The engine tests use toy claims whose answer is known, so a checker that confirms
everything (or never shrinks) fails here.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import strategies as st

from cdyn import claims
from cdyn.claims import CheckResult, Claim

# loadgroup: the module's claim results are one fixture: computed once, on one worker.
pytestmark = pytest.mark.xdist_group("claims")

OURS = ("C5", "C5-false", "C6", "C6-false", "C7", "C7-false", "C8", "C8-false", "C9", "C9-false", "C9-wd")
#: Small budget for pytest: enough to exercise each expected-true claim's strategy and check.
#: Expected-false claims keep their own (small) budget: the point is to find and shrink a
#: counterexample, and the first examples Hypothesis draws are the simplest, often not failing.
BUDGET = 3


@pytest.fixture(scope="module")
def results() -> dict[str, claims.ClaimResult]:
    out = {}
    for cid in OURS:
        c = claims.get_claim(cid)
        out[cid] = claims.run_claim(c, examples=BUDGET if c.expected else None, seed=0)
    return out


@pytest.mark.parametrize("cid", OURS)
def test_claim_outcome_is_the_expected_one(results, cid):
    r = results[cid]
    assert r.error is None, r.error
    assert r.ok, (r.result, r.worst_margin, r.worst_details)
    if not r.claim.expected:
        ce = r.counterexample
        assert ce is not None and ce["margin"] < 0
        assert {"instance", "init", "horizon", "margin", "claim"} <= set(ce)
        json.dumps(ce)  # saved as JSON: must serialise


def test_counterexample_replays_exactly(results):
    for cid in ("C7-false", "C6-false"):
        ce = json.loads(json.dumps(results[cid].counterexample))  # through JSON, as the file would be
        claim, res = claims.replay(ce)
        assert claim.id == cid and res.margin == ce["margin"]


def test_counterexamples_are_shrunk_to_two_modes(results):
    for cid in ("C5-false", "C6-false", "C7-false", "C9-false"):
        assert len(results[cid].counterexample["instance"]["a"]) == 2


def _toy(check, expected=True, strategy=None) -> Claim:
    return Claim(id="T", title="toy", statement="toy", latex="", hypotheses=(), expected=expected,
                 strategy=strategy or (lambda: st.fixed_dictionaries({"x": st.integers(0, 1000)})), check=check)


def test_engine_shrinks_to_the_minimal_counterexample():
    r = claims.run_claim(_toy(lambda i: CheckResult(5.5 - i["x"])), examples=50, seed=0)
    assert r.result == "falsified" and r.ok is False
    assert r.counterexample["instance"] == {"x": 6}


def test_engine_reports_errors_and_unfalsified_false_claims():
    def boom(_i):
        raise RuntimeError("broken check")

    r = claims.run_claim(_toy(boom), examples=5, seed=0)
    assert r.result == "error" and "broken check" in r.error and not r.ok
    r = claims.run_claim(_toy(lambda i: CheckResult(1.0), expected=False), examples=5, seed=0)
    assert r.result == "verified" and not r.ok


def test_target_steers_towards_small_margins():
    """With target(), the search finds the one failing value in a large space (plain random would not)."""
    strategy = lambda: st.fixed_dictionaries({"x": st.floats(0, 1e6)})  # noqa: E731
    r = claims.run_claim(_toy(lambda i: CheckResult(1e6 - 1.0 - i["x"]), strategy=strategy), examples=200, seed=0)
    assert r.result == "falsified"


def test_registry_errors_name_the_field():
    with pytest.raises(ValueError, match="claims: unknown claim id 'C99'"):
        claims.select("C5,C99")
    assert [c.id for c in claims.select("C8,C5")] == ["C5", "C8"]
    ids = [c.id for c in claims.all_claims()]
    assert set(OURS) <= set(ids)
