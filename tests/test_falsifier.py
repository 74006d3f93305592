"""The falsifier: non-finite margins are counterexamples, the local second stage, the thin claims.

Toy claims with a known answer test the engine; the two thin expected-false claims test
that the second stage finds what Hypothesis alone misses at the default budget.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import strategies as st

from cdyn import claims
from cdyn.claims import CheckResult, Claim, Param, Space
from cdyn.claims import _registry


def _toy(cid: str, check, strategy, space=None, expected=False) -> Claim:
    return Claim(id=cid, title="toy", statement="toy", latex="", hypotheses=(), strategy=strategy, check=check,
                 expected=expected, space=space)


# -- non-finite margins ------------------------------------------------------------------------------

def _blowup(i):
    x = i["x"]
    return CheckResult(float("nan") if x > 500 else 1.0, {"reason": f"run diverged at x = {x}"} if x > 500 else {})


def test_a_nonfinite_margin_is_a_counterexample_with_its_reason(monkeypatch):
    toy = _toy("T-nan", _blowup, lambda: st.fixed_dictionaries({"x": st.integers(0, 1000)}))
    monkeypatch.setitem(_registry._CLAIMS, toy.id, toy)
    r = claims.run_claim(toy, examples=50, seed=0)
    assert r.result == "falsified" and r.error is None and r.ok and r.found_by == "hypothesis"
    ce = r.counterexample
    assert ce["instance"] == {"x": 501}  # shrunk like any counterexample
    assert ce["margin"] == "nan" and ce["reason"] == "margin is nan: run diverged at x = 501"
    out = json.loads(json.dumps(r.as_json(), allow_nan=False))  # strict JSON: no bare NaN anywhere
    assert out["worst_margin"] == "nan" and out["counterexample"]["reason"].startswith("margin is nan")
    claim, res = claims.replay(json.loads(json.dumps(ce)))  # through JSON, as the file would be
    assert claim is toy and math.isnan(res.margin) and claims.margins_equal(ce["margin"], res.margin)


def test_infinite_margins_fail_and_rank_below_finite_ones():
    def check(i):
        return CheckResult(-math.inf if i["x"] == 7 else (2.0 if i["x"] > 7 else 1.0 + i["x"]), {})

    r = claims.run_claim(_toy("T-inf", check, lambda: st.fixed_dictionaries({"x": st.integers(0, 7)})), examples=50)
    assert r.result == "falsified" and r.counterexample["margin"] == "-inf"
    assert r.worst_margin == -math.inf and "margin is -inf" in r.counterexample["reason"]


def test_exceptions_stay_errors():
    def check(i):
        raise FloatingPointError("overflow in the check")

    r = claims.run_claim(_toy("T-exc", check, lambda: st.fixed_dictionaries({"x": st.integers(0, 9)})), examples=5)
    assert r.result == "error" and "FloatingPointError: overflow" in r.error and r.counterexample is None


def test_margins_equal():
    assert claims.margins_equal("nan", float("nan")) and claims.margins_equal(-0.25, -0.25)
    assert claims.margins_equal("-inf", -math.inf) and not claims.margins_equal("inf", -math.inf)
    assert not claims.margins_equal(-0.25, -0.25 + 1e-12) and not claims.margins_equal(None, 1.0)
    assert not claims.margins_equal("nan", 1.0) and not claims.margins_equal("junk", 1.0)


# -- the space and the second stage ------------------------------------------------------------------

BAND = 0.6180339887  # an irrational-looking centre: no simple float Hypothesis favours lands on it


def _band_space() -> Space:
    return Space((Param("x", 0.0, 1.0), Param("y", 1e-3, 10.0, log=True)),
                 build=lambda p: {"x": p["x"], "y": p["y"]})


def _band_check(seen: list):
    def check(i):
        seen.append(dict(i["params"]))
        # Fails only for |x − 0.618 − 0.01·log10 y| < 0.002: 0.4% of the box, inside it.
        return CheckResult(abs(i["x"] - BAND - 0.01 * math.log10(i["y"])) - 0.002, {})
    return check


def test_space_builds_inside_its_box_and_names_bad_points():
    sp = _band_space()
    inst = sp.instance({"x": 0.25, "y": 0.1})
    assert inst == {"x": 0.25, "y": 0.1, "params": {"x": 0.25, "y": 0.1}} and sp.values(inst) == inst["params"]
    assert sp.from_unit(sp.to_unit({"x": 0.25, "y": 0.1})) == pytest.approx({"x": 0.25, "y": 0.1}, rel=1e-14)
    assert sp.from_unit([0.5, 0.5])["y"] == pytest.approx(0.1)  # log scale: the middle of [1e-3, 10] is 0.1
    with pytest.raises(ValueError, match="parameter 'y' = 20.0 is outside"):
        sp.instance({"x": 0.5, "y": 20.0})
    with pytest.raises(ValueError, match="log-scale parameter needs lo > 0"):
        Param("z", 0.0, 1.0, log=True)


def test_local_search_finds_a_thin_band_hypothesis_misses():
    seen_alone: list = []
    sp = _band_space()
    alone = claims.run_claim(_toy("T-band", _band_check(seen_alone), sp.strategy, space=sp), seed=0, local_budget=0)
    assert alone.result == "verified" and alone.checks == {"hypothesis": alone.examples, "local_search": 0}
    seen: list = []
    r = claims.run_claim(_toy("T-band", _band_check(seen), sp.strategy, space=sp), seed=0)
    assert r.result == "falsified" and r.found_by == "local-search" and r.counterexample["found_by"] == "local-search"
    assert r.checks["hypothesis"] == alone.checks["hypothesis"]  # the first stage is unchanged
    assert 0 < r.checks["local_search"] <= claims.LOCAL_BUDGET and sum(r.checks.values()) == r.examples == len(seen)
    assert all(0.0 <= p["x"] <= 1.0 and 1e-3 <= p["y"] <= 10.0 for p in seen)  # never outside the box
    ce = r.counterexample
    assert ce["margin"] < 0 and ce["instance"]["params"] == {"x": ce["instance"]["x"], "y": ce["instance"]["y"]}
    # simplified: no parameter keeps more significant digits than it needs
    for k in ("x", "y"):
        v = ce["instance"][k]
        shorter = [float(f"{v:.{d}g}") for d in range(1, 9) if float(f"{v:.{d}g}") != v]
        assert len(shorter) < 8, (k, v)


def test_a_true_claim_stays_verified_and_the_budget_is_respected():
    sp = _band_space()
    true = _toy("T-true", lambda i: CheckResult(1.0 + i["x"]), sp.strategy, space=sp, expected=True)
    r = claims.run_claim(true, seed=0, local_budget=25)
    assert r.result == "verified" and r.ok and r.found_by is None and r.checks["local_search"] <= 25


# -- the thin expected-false claims ------------------------------------------------------------------

@pytest.mark.parametrize("cid", ["C5-thin-false", "C9-thin-false"])
def test_thin_claims_need_the_second_stage(cid):
    c = claims.get_claim(cid)
    alone = claims.run_claim(c, seed=0, local_budget=0)
    assert alone.result == "verified" and alone.error is None and alone.worst_margin > 0
    r = claims.run_claim(c, seed=0)
    assert r.result == "falsified" and r.ok and r.found_by == "local-search"
    assert r.checks["local_search"] <= claims.LOCAL_BUDGET
    ce = json.loads(json.dumps(r.counterexample))
    p = ce["instance"]["params"]
    assert all(q.lo <= p[q.name] <= q.hi for q in c.space.params)
    claim, res = claims.replay(ce)
    assert claim.id == cid and res.margin == ce["margin"] < 0
