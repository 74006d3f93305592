"""C10 and C11 through the claims engine (the same code `cdyn verify` runs), and proof that
their checks can fail: a biased estimator, a horizon too short for stage 2."""

from __future__ import annotations

import numpy as np
import pytest

from cdyn import claims
from cdyn import numerics
from cdyn.claims import c10_c11
from cdyn.numerics._tracking import resolvable_kappa

# loadgroup: one fixture runs C10 and C11: computed once, on one worker.
pytestmark = pytest.mark.xdist_group("c10_c11")


@pytest.fixture(scope="module")
def results():
    return {cid: claims.run_claim(claims.get_claim(cid), seed=0) for cid in ("C10", "C11")}


def test_c10_verified_with_the_measured_scaling(results):
    r = results["C10"]
    assert r.result == "verified", (r.error, r.worst_details.get("margins"))
    d = r.worst_details
    tr, gs = d["tracking"], d["gradient"]
    # The measured exponents are what the claim states, within its own allowance.
    assert abs(tr["slope_n"] + 0.5) <= c10_c11.K_SE * tr["slope_n_se"] + tr["slope_n_allowance"]
    assert abs(tr["slope_eta"] - 0.5) <= c10_c11.K_SE * tr["slope_eta_se"]
    assert gs["p"] > 0 and gs["q"] > 0
    # SGD's gap to the flow is the noise part (to GD) plus GD's O(η) bias, up to sampling error.
    for cell in tr["runs"].values():
        assert cell["M_rel"]["rms_to_flow"] > 0


def test_c10_unbiasedness_test_rejects_the_v_statistic():
    """The same statistic with the diagonal kept (biased by O(1/n)) must fail."""
    p = numerics.default_problem()
    spec = {"scale": 0.5, "seed": 3, "batches": [4, 16, 64], "repeats": [3000, 1500, 800], "negatives": "v"}
    assert c10_c11.gradient_statistics(p, spec)["margin_unbiased"] < 0


def test_c11_verified_and_reports_the_cca_comparison(results):
    r = results["C11"]
    assert r.result == "verified", r.error
    d = r.worst_details
    assert d["fraction"] >= c10_c11.THRESHOLD
    for row in d["instances"]:
        assert row["cca"]["kappa_ratio"] > 0 and 0 <= row["cca"]["sin_angle_A"] <= 1
        assert row["pos_only"]["status"] in ("diverged", "completed")


def test_c11_fails_when_the_horizon_misses_stage_two():
    inst = {"family_seed": 0, "count": 2, "init": {"scale": 1e-3, "seed": 0}, "horizon": 3.0, "eta": 0.04,
            "batch": 32, "temperature": 1.0, "weight_decay": 0.5}
    res = c10_c11.check_c11(inst)
    assert res.margin < 0 and res.details["fraction"] == 0.0


def test_c11_check_is_deterministic():
    inst = {"family_seed": 7, "count": 1, "init": {"scale": 1e-3, "seed": 0}, "horizon": 12.0, "eta": 0.04,
            "batch": 32, "temperature": 1.0, "weight_decay": 0.5}
    a, b = c10_c11.check_c11(inst), c10_c11.check_c11(inst)
    assert a.margin == b.margin and a.details == b.details


def test_resolvable_kappa_is_where_svd_stops_resolving_sigma_k():
    """At the cap σ_k = 100·m·ε·σ_1 is recovered to 1%; 10⁴× beyond it (below ε·σ_1) it is not."""
    m = 4
    cap = resolvable_kappa(m)
    rng = np.random.default_rng(0)
    for _ in range(5):
        U, _ = np.linalg.qr(rng.standard_normal((m, m)))
        V, _ = np.linalg.qr(rng.standard_normal((m, m)))
        for kappa, ok in ((cap, True), (1e4 * cap, False)):
            s = np.array([1.0, 0.5, 0.2, 1 / kappa])
            got = np.linalg.svd((U * s) @ V.T, compute_uv=False)[-1]
            assert (abs(got * kappa - 1) <= 0.01) == ok
