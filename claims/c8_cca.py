r"""C8: on general instances the flow's limit is CCA — $\mathrm{eig}(\lambda M) \to \rho_i^2$ and the
learned subspaces are the top-$m$ canonical directions.

Instances are built from their canonical structure (`numerics.canonical_instance`):
arbitrary view covariances (condition up to $10^2$), chosen canonical correlations with
a gap after the $m$-th, $A$, $B$ sharing no singular basis, non-isotropic full-rank
noise, $d \ge r \ge m$. The flow runs from a random initialisation until the Newton step
to the equilibrium set stops shrinking; every tolerance is the Newton estimate of the
remaining error, doubled, plus a floating-point floor (`_limits`).

C8-false is THEORY §6's own wording, *"hence the final κ = (ρ₁/ρ_k)²"*, with κ the
singular-value ratio of §4. At the minimum $\lambda M = Z\,\mathrm{diag}(\rho^2)Z^{-1}$ for
an invertible $Z$ that balance does not make orthogonal, so $M$ need not be normal and
its singular values differ from its eigenvalues: the engine must find such an instance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from cdyn import numerics

from ._claim import CheckResult, Claim
from ._common import slack
from ._limits import EPS, eig_lamM, limit_run, newton_tolerance, reference_floor
from ._registry import register
from ._strategies import floats, seeds, spaced_desc, spread

HYPOTHESES = (
    "general instance built from its canonical structure: Σ_A = R_A diag(s_A) R_Aᵀ, Σ_B likewise (condition ≤ 1e2), "
    "canonical correlations ρ chosen, A, B with no common singular basis, full-rank non-isotropic noise",
    "r ∈ {2, 3, 4}, 1 ≤ m ≤ r, d_A, d_B ∈ [r, r + 2]; ρ_1 ∈ [0.5, 0.95], ρ_{i+1} ≤ ρ_i/1.15 (a gap after every ρ_m)",
    "random Gaussian initialisation, entry scale 10^(−s), s ∈ [1, 4], unbalanced or balanced (Q = 0); λ ∈ [0.5, 2]; "
    "full loss",
)


@st.composite
def _instances(draw: Any, balanced: bool = False) -> dict[str, Any]:
    r = draw(st.integers(2, 4))
    d_A, d_B = r + draw(st.integers(0, 2)), r + draw(st.integers(0, 2))
    rho = draw(spaced_desc(r, (0.5, 0.95), (1.15, 2.0)))
    return {"rho": rho, "m": draw(st.integers(1, r)),
            "spectrum_SA": draw(spread(d_A, 10 ** draw(floats(0.0, 2.0)))),
            "spectrum_SB": draw(spread(d_B, 10 ** draw(floats(0.0, 2.0)))),
            "lam": draw(floats(0.5, 2.0)), "seed": draw(seeds()),
            "init": {"log10_scale": -draw(floats(1.0, 4.0)), "seed": draw(seeds()),
                     "balanced": balanced or draw(st.booleans())}, "horizon": "to equilibrium"}


def _build(instance: dict[str, Any]) -> tuple[numerics.CanonicalInstance, dict[str, Any]]:
    ci = numerics.canonical_instance(instance["rho"], instance["spectrum_SA"], instance["spectrum_SB"],
                                     m=instance["m"], lam=instance["lam"], seed=instance["seed"])
    scale = 10.0 ** instance["init"]["log10_scale"]
    init = numerics.balanced_init if instance["init"]["balanced"] else numerics.random_init
    W0 = init(ci.problem, scale, instance["init"]["seed"])
    return ci, limit_run(ci.problem, *W0, scale)


def check_c8(instance: dict[str, Any]) -> CheckResult:
    ci, run = _build(instance)
    p, m = ci.problem, ci.problem.m
    W_A, W_B, ed = run["W_A"], run["W_B"], run["ed"]
    if not ed.stable:
        return CheckResult(-1.0, {"reason": "did not reach a stable equilibrium", "t": run["t"]})
    floor = reference_floor(p)
    rho_num = numerics.canonical_correlations(p)
    err_rho = float(np.abs(rho_num - ci.rho).max())
    ev, cond_X = eig_lamM(p, W_A, W_B)
    target = ci.rho[:m] ** 2
    tol_eig = newton_tolerance(lambda a, b: eig_lamM(p, a, b)[0], W_A, W_B, ed) + 16 * EPS * cond_X * ev[0] + floor
    err_eig = np.abs(ev - target)
    sin = {}
    tol_sin = {}
    for view, W, Ws, dirs in (("A", W_A, ed.W_A_star, ci.dirs_A), ("B", W_B, ed.W_B_star, ci.dirs_B)):
        sin[view] = numerics.principal_angle_sin(W.T, dirs[:, :m])
        tol_sin[view] = 2 * numerics.principal_angle_sin(W.T, Ws.T) + 16 * EPS * np.linalg.cond(W @ W.T) + floor
    margins = {"canonical_correlations": slack(err_rho, floor * ci.rho[0]),
               "eigenvalues": float(min(slack(e, t) for e, t in zip(err_eig, tol_eig))),
               "subspace_A": slack(sin["A"], tol_sin["A"]), "subspace_B": slack(sin["B"], tol_sin["B"])}
    return CheckResult(min(margins.values()), {
        "margins": margins, "rho2": target.tolist(), "eig_lamM": ev.tolist(), "eig_error": err_eig.tolist(),
        "eig_tolerance": tol_eig.tolist(), "sin_angle": sin, "sin_tolerance": tol_sin, "m": m,
        "distance": ed.distance, "t": run["t"], "nfev": run["nfev"],
        "kappa_sv": numerics.kappa(p, W_A, W_B), "kappa_eig": numerics.kappa_eig(p, W_A, W_B),
        "kappa_limit": numerics.kappa_limit(p)})


def check_c8_false(instance: dict[str, Any]) -> CheckResult:
    ci, run = _build(instance)
    p, W_A, W_B, ed = ci.problem, run["W_A"], run["W_B"], run["ed"]
    k_sv, limit = numerics.kappa(p, W_A, W_B), numerics.kappa_limit(p)
    tol = float(newton_tolerance(lambda a, b: numerics.kappa(p, a, b), W_A, W_B, ed)) + reference_floor(p) * limit
    M = numerics.feature_covariance(p, W_A, W_B)
    return CheckResult(slack(abs(k_sv - limit), tol), {
        "kappa_sv": k_sv, "kappa_eig": numerics.kappa_eig(p, W_A, W_B), "kappa_limit": limit, "tolerance": tol,
        "asymmetry_of_M": float(np.linalg.norm(M - M.T) / np.linalg.norm(M)), "distance": ed.distance})


def _summary(details: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [d for d in details if "eig_error" in d]
    if not ok:
        return {}
    return {"max_eig_error": max(max(d["eig_error"]) for d in ok),
            "max_sin_angle": max(max(d["sin_angle"].values()) for d in ok),
            "max_kappa_sv_over_kappa_eig": max(d["kappa_sv"] / d["kappa_eig"] for d in ok),
            "points": [[r, e] for d in ok for r, e in zip(d["rho2"], d["eig_lamM"])]}


register(
    Claim(
        id="C8", title="the limit is CCA: eig(λM) → ρ_i², subspaces → top canonical directions",
        statement="On general instances (no shared basis, non-isotropic noise, m ≤ r), the full-loss flow converges "
                  "to a point where the eigenvalues of λM are the top-m squared canonical correlations and the row "
                  "spaces of W_A, W_B are the top-m canonical directions Σ^{-1/2}U_m, Σ^{-1/2}V_m.",
        latex=r"\operatorname{eig}_i(\lambda M_\infty) = \rho_i^2\ (i \le m),\qquad "
              r"\operatorname{row}(W_A^\infty) = \operatorname{span}(\Sigma_A^{-1/2}U_m)",
        hypotheses=HYPOTHESES, strategy=_instances, check=check_c8, examples=8,
        margin_meaning="min of 1 − error/tolerance over the canonical correlations, eigenvalues and both subspaces",
        summarize=_summary,
    ),
    Claim(
        id="C8-false", title="(as THEORY §6 words it) the final singular-value κ equals (ρ₁/ρ_k)²",
        statement="On general instances the singular-value condition number κ of THEORY §4 at the limit of the flow "
                  "equals (ρ₁/ρ_k)² (true for the eigenvalue ratio; M need not be normal).",
        latex=r"\sigma_1(M_\infty)/\sigma_k(M_\infty) = (\rho_1/\rho_k)^2",
        hypotheses=HYPOTHESES[:2] + ("balanced random initialisation (Q = 0 exactly, so non-normality is not an "
                                     "artefact of Q ≠ 0), entry scale 10^(−s), s ∈ [1, 4]; λ ∈ [0.5, 2]; full loss",),
        strategy=lambda: _instances(True), check=check_c8_false, expected=False, examples=8,
        shrink_budget=20,
        margin_meaning="1 − |κ_sv − (ρ₁/ρ_k)²| / (Newton-estimated error of κ_sv + floating-point floor)",
    ),
)
