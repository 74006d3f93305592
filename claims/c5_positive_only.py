r"""C5: positive pairs alone make $\kappa$ grow, exactly as $\kappa(0)e^{2(g_{max}-g_{min})t}$.

Hypotheses: decoupled instance (shared right singular vectors, $\Sigma_z = I$, isotropic
noise), aligned, balanced, *common* initialisation $w_{A,i} = w_{B,i} = w_0$. The matrix
flow of `("pos",)` is integrated (in rotated bases, $d \ge r$) and $\kappa(t)$ compared with
the law `theory.closed_forms.kappa_growth_law()` derives from `dsolve`.

C5-false states the same monotonicity from a *random per-mode* initialisation: a weak
mode that starts larger than a strong one makes $\kappa$ first fall while the strong mode
catches up, so the engine must find and shrink a counterexample.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from cdyn import numerics

from ._claim import CheckResult, Claim
from ._common import (
    build_decoupled, integrate_tight, kappa_series, log_w_error_bound, monotone_violation, slack,
)
from ._registry import register
from ._strategies import decoupled_spec, floats

HYPOTHESES = (
    "decoupled: A = U_A diag(a) Vᵀ, B = U_B diag(b) Vᵀ (shared V), Σ_z = I, isotropic noise, m = r",
    "a and b decrease together, so g = ab is ordered and distinct",
    "aligned, balanced, common initialisation W_A = P diag(w0) U_Aᵀ, W_B = P diag(w0) U_Bᵀ",
    "positive pairs only (terms = pos); horizon: the strongest mode grows by a factor G ≤ 1e6",
)


@st.composite
def _instances(draw: Any, common: bool) -> dict[str, Any]:
    spec = draw(decoupled_spec())
    r = len(spec["a"])
    if common:
        init = {"w0": draw(floats(1e-3, 0.1))}
    else:
        init = {"w_A": [draw(floats(1e-3, 0.1)) for _ in range(r)], "w_B": [draw(floats(1e-3, 0.1)) for _ in range(r)]}
    return {**spec, "init": init, "horizon": {"growth": draw(floats(10.0, 1e6))}}


def _run(instance: dict[str, Any]) -> dict[str, Any]:
    d = build_decoupled(instance)
    r = d.r
    init = instance["init"]
    w_A = np.full(r, init["w0"]) if "w0" in init else np.asarray(init["w_A"])
    w_B = np.full(r, init["w0"]) if "w0" in init else np.asarray(init["w_B"])
    T = float(np.log(instance["horizon"]["growth"]) / (2 * d.g.max()))
    tr = integrate_tight(d.problem, *d.init(w_A, w_B), T, ("pos",), n_points=101, dense_output=False)
    logk = np.log(kappa_series(d.problem, tr))
    tol = 4 * log_w_error_bound(d, tr)
    return {"inst": d, "traj": tr, "logk": logk, "tol": tol, "T": T}


def check_c5(instance: dict[str, Any]) -> CheckResult:
    run = _run(instance)
    d, tr, logk, tol = run["inst"], run["traj"], run["logk"], run["tol"]
    if tr.status != "completed":
        return CheckResult(-1.0, {"status": tr.status, "t_stop": tr.t_stop})
    law = np.log(numerics.kappa_law(tr.t, d.g.max(), d.g.min()))
    err = float(np.abs(logk - law).max())
    drop = monotone_violation(logk)
    margin = min(slack(err, tol), slack(drop, tol))
    return CheckResult(margin, {
        "g": d.g.tolist(), "T": run["T"], "kappa_0": float(np.exp(logk[0])), "kappa_T": float(np.exp(logk[-1])),
        "law_kappa_T": float(np.exp(law[-1])), "max_log_kappa_error": err, "tolerance": tol,
        "largest_drop": drop, "nfev": tr.nfev})


def check_c5_false(instance: dict[str, Any]) -> CheckResult:
    run = _run(instance)
    tr, logk, tol = run["traj"], run["logk"], run["tol"]
    drop = monotone_violation(logk)
    i = int(np.argmax(-np.diff(logk))) if logk.size > 1 else 0
    return CheckResult(slack(drop, tol), {
        "T": run["T"], "kappa_0": float(np.exp(logk[0])), "kappa_T": float(np.exp(logk[-1])),
        "largest_drop_log_kappa": drop, "drop_at_t": float(tr.t[i]), "tolerance": tol, "status": tr.status})


def _summary(details: list[dict[str, Any]]) -> dict[str, Any]:
    errs = [d["max_log_kappa_error"] for d in details if "max_log_kappa_error" in d]
    return {"max_log_kappa_error": max(errs) if errs else None,
            "max_tolerance": max(d["tolerance"] for d in details if "tolerance" in d)}


register(
    Claim(
        id="C5", title="positive pairs only: κ grows as κ(0)e^{2(g_max−g_min)t}",
        statement="With positive pairs only, on a decoupled instance from a balanced common initialisation, "
                  "κ(t) is non-decreasing and equals the closed form κ(0)·e^{2(g_max−g_min)t}, κ(0) = g_max/g_min.",
        latex=r"\kappa(t) = \frac{g_{\max}}{g_{\min}}\,e^{2(g_{\max}-g_{\min})t},\qquad \dot\kappa \ge 0",
        hypotheses=HYPOTHESES, strategy=lambda: _instances(True), check=check_c5, examples=12,
        margin_meaning="1 − (error of log κ against the law, or largest drop of log κ) / solver error bound",
        summarize=_summary,
    ),
    Claim(
        id="C5-false", title="(mis-stated) positive-only κ is non-decreasing from a random per-mode init",
        statement="With positive pairs only, on a decoupled instance from a random per-mode (unbalanced, "
                  "not common) initialisation, κ(t) is non-decreasing.",
        latex=r"\dot\kappa(t) \ge 0 \text{ for any aligned } (w_{A,i}, w_{B,i})",
        hypotheses=HYPOTHESES[:2] + ("aligned, random per-mode initialisation w_A,i, w_B,i ∈ [1e-3, 0.1]",
                                     HYPOTHESES[3]),
        strategy=lambda: _instances(False), check=check_c5_false, expected=False, examples=12,
        margin_meaning="1 − (largest drop of log κ) / solver error bound",
    ),
)
