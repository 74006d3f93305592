"""The "Findings" section of report.md: every number is read from this run's results (never retyped)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import brentq

from cdyn import numerics
from cdyn.claims import ClaimResult

#: The weight-decay sweep: fractions of g_max, the start w₀, the horizon, the divergence bound.
MU_FRACTIONS, W0, HORIZON, MAX_NORM, KAPPA_RESOLVED = (0.0, 0.05, 0.2, 0.5, 0.9, 1.1, 1.5), 0.01, 40.0, 1e6, 1e8


def _fmt(x: Any) -> str:
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def mu_sweep() -> dict[str, Any]:
    r"""Positive pairs + weight decay on the default spectra (decoupled): which μ diverges, when, and κ vs
    the μ-free law $\kappa(C)e^{2(g_{\max}-g_{\min})t}$ over the window where κ ≤ 1e8 is resolved."""
    d0 = numerics.decoupled_instance(numerics.DEFAULT_SPECTRUM_A, numerics.DEFAULT_SPECTRUM_B, seed=0)
    g_max, g_min = float(d0.g.max()), float(d0.g.min())
    law = lambda t: numerics.kappa_law(t, g_max, g_min)  # noqa: E731
    t_resolved = float(np.log(KAPPA_RESOLVED / law(0.0)) / (2 * (g_max - g_min)))
    rows = []
    for frac in MU_FRACTIONS:
        mu = frac * g_max
        d = numerics.decoupled_instance(numerics.DEFAULT_SPECTRUM_A, numerics.DEFAULT_SPECTRUM_B, mu=mu, seed=0)
        tr = numerics.integrate(d.problem, *d.init(np.full(d.r, W0), np.full(d.r, W0)), HORIZON, ("pos", "wd"),
                                rtol=1e-10, atol=1e-14, n_points=81, max_norm=MAX_NORM, method="LSODA", jac=False)
        # ‖W‖_F² = 2 Σ_i X_i(t), X_i = w₀² e^{2(g_i − μ)t}: the closed-form time ‖W‖ reaches the bound.
        norm = lambda t: float(np.sqrt(2 * numerics.positive_only_X(t, W0**2, d.g, mu).sum()))  # noqa: E731
        hi = 1.0  # doubling brackets the crossing without e^{2(g−μ)t} overflowing
        while norm(hi) < MAX_NORM and hi < 10 * HORIZON:
            hi *= 2
        t_div = float(brentq(lambda t: norm(t) - MAX_NORM, 0.0, hi)) if norm(hi) >= MAX_NORM else None
        keep = tr.t <= min(float(tr.t_stop), t_resolved)
        k = np.array([numerics.kappa(d.problem, a, b) for a, b in zip(tr.W_A[keep], tr.W_B[keep])])
        rows.append({"mu_over_g_max": frac, "mu": mu, "growing_modes": int(np.sum(d.g > mu)), "status": tr.status,
                     "t_stop": float(tr.t_stop), "t_divergence_predicted": t_div,
                     "norm_end": float(np.linalg.norm(tr.W_A[-1])), "t_window": float(tr.t[keep][-1]),
                     "kappa_window_end": float(k[-1]),
                     "max_rel_error_vs_law": float(np.max(np.abs(k / law(tr.t[keep]) - 1)))})
    return {"g_max": g_max, "g_min": g_min, "kappa_C": float(law(0.0)), "t_resolved": t_resolved,
            "w0": W0, "horizon": HORIZON, "max_norm": MAX_NORM, "rows": rows}


def _c10(s: dict[str, Any]) -> list[str]:
    out = []
    for r in s["runs"]:
        etas, ns = r["etas"], r["batches"]
        out.append(
            f"- **SGD tracks the flow (C10), problem seed {r['problem_seed']}.** T = {r['horizon']:g}, "
            f"{r['repeats']} SGD seeds per cell, n ∈ {{{', '.join(map(str, ns))}}}, η ∈ {{{', '.join(f'{e:g}' for e in etas)}}}: "
            f"the RMS gap sup‖M_SGD − M_GD‖/sup‖M‖ has exponent {r['slope_n']:.3g} ± {r['slope_n_se']:.2g} in n "
            f"(theory −1/2, allowed {s['k_se']:g} SE + {r['slope_n_allowance']:.2g}) and {r['slope_eta']:.3g} ± "
            f"{r['slope_eta_se']:.2g} in η (theory +1/2); RMS gaps "
            + ", ".join(f"{v:.3g} ({k})" for k, v in r["rms_M_rel"].items())
            + f"; GD at η = {etas[0]:g} is {r['gd_to_flow_M_rel']:.3g} from the flow. Batch-gradient variance: "
            f"slope {r['variance_slope']:.3g} in n (→ −1 as n grows; q/p = {r['q_over_p']:.3g}).")
    return out


def _c11(s: dict[str, Any]) -> list[str]:
    st, seeds = s["setup"], s["problem_seeds"]
    c, sp, fl = s["clip_kappa_over_cca"], s["spectral_sgd_kappa_over_cca"], s["flow_kappa_over_cca"]
    if len(seeds) == 1:
        seed_text = f"seed {seeds[0]} (1 instance"
    elif seeds == list(range(seeds[0], seeds[-1] + 1)):
        seed_text = f"seeds {seeds[0]}–{seeds[-1]} ({len(seeds)} instances"
    else:
        seed_text = f"seeds {', '.join(map(str, seeds))} ({len(seeds)} instances"
    return [f"- **CLIP shows two stages (C11).** Problem {seed_text}, batch "
            f"{st['batch']}, η = {st['eta']:g}, horizon {st['horizon']:g}): two stages (each ≥ {s['stage_factor']:g}×) "
            f"for CLIP and none for positive pairs on {s['held']}/{s['instances']} (needed: fraction ≥ "
            f"{s['threshold']:g}). CLIP's final κ / (ρ₁/ρ_k)²: median {c['median']:.4g} ({c['min']:.4g}–{c['max']:.4g}); "
            f"spectral-loss SGD under the same noise {sp['median']:.4g} ({sp['min']:.4g}–{sp['max']:.4g}); the flow "
            f"{fl['min']:.4g}–{fl['max']:.4g}. Learned subspaces within sin θ ≤ {s['max_sin_angle']:.2g} of the "
            "canonical directions."]


def _stages(ks: dict[str, Any]) -> list[str]:
    st, defl, dec = ks["stages"], ks["stage2_deflated_predicted"], ks["decoupled"]
    inside = min(defl) <= st["stage2_rate"] <= max(defl)
    return ["", "Stages of the full flow on the default instance (`numerics.detect_stages`):", "",
            f"- peak t* = {st['t_peak']:.3f}, κ: {st['kappa_initial']:.3g} → {st['kappa_peak']:.3g} → "
            f"{st['kappa_final']:.4g} (eigenvalue ratio {ks['kappa_final_eig']:.4g}; CCA limit {st['kappa_limit']:.4g});",
            f"- stage-1 slope of log κ {st['stage1_rate']:.3g} (aligned-mode prediction 2(g₁ − g_k) = "
            f"{st['stage1_predicted']:.3g}; this instance starts unaligned, from a random init);",
            f"- stage-2 slope {st['stage2_rate']:.3g} against −2g_k = {st['stage2_predicted']:.3g}. −2g_k is the rate "
            "of a *decoupled* instance, where the weak mode grows at 2g_k whatever the strong modes do (same spectra "
            f"and noise, decoupled: measured {dec['stage2_rate']:.3g}, predicted {dec['stage2_predicted']:.3g}). "
            "This instance has random bases: once the top j modes settle at their CCA values, their negative-pair "
            "term cancels their part of C, and the weak mode grows at 2σ of C_j = Σ_A^{1/2}(K − K_j)Σ_B^{1/2} "
            "(`cdyn._report_figures.deflated_rates`): for j = 0…k−1 the stage-2 slope is then "
            + ", ".join(f"{r:.3g}" for r in defl) + f". The measured slope, taken over the middle of stage 2 while "
            f"the middle modes are still settling, {'lies within' if inside else 'lies OUTSIDE'} that range;",
            f"- time to balance (κ ≤ {st['balance_threshold']:.3g}): {_fmt(st['t_balance'])}."]


def _weight_decay(sw: dict[str, Any]) -> list[str]:
    md = ["", f"Positive pairs + weight decay on the default spectra (decoupled, w₀ = {sw['w0']:g}, horizon "
          f"{sw['horizon']:g}, divergence at ‖W‖ = {sw['max_norm']:.0e}). Mode i grows iff g_i > μ (g_max = "
          f"{sw['g_max']:.3g}, g_min = {sw['g_min']:.3g}). The law κ(t) = κ(C)e^{{2(g_max−g_min)t}}, κ(C) = "
          f"{sw['kappa_C']:.4g}, does not involve μ (so κ(t) is the same curve in every row); each row compares its own "
          f"run's κ with the law at every output time where κ ≤ {KAPPA_RESOLVED:.0e} is resolved by the SVD (t ≤ "
          f"{sw['t_resolved']:.3g}, law ≤ {KAPPA_RESOLVED:.0e}) before the run stopped:", "",
          "| μ/g_max | growing modes (g_i > μ) | predicted | status | t_stop | predicted divergence time | "
          "‖W_A‖ at t_stop | max \\|κ/law − 1\\| |",
          "|---|---|---|---|---|---|---|---|"]
    for row in sw["rows"]:
        predicted = "‖W‖ → ∞" if row["growing_modes"] else "W → 0"
        t_div = "—" if row["t_divergence_predicted"] is None else f"{row['t_divergence_predicted']:.4g}"
        md.append(f"| {row['mu_over_g_max']:g} | {row['growing_modes']} | {predicted} | {row['status']} | "
                  f"{row['t_stop']:.4g} | {t_div} | {row['norm_end']:.3g} | {row['max_rel_error_vs_law']:.1e} |")
    return md


def findings(results: list[ClaimResult], data: dict[str, Any]) -> list[str]:
    by = {r.claim.id: r for r in results}
    md = ["## Findings", ""]
    if "C6" in by and by["C6"].summary:
        s = by["C6"].summary
        md += [f"- **Peak time (C6).** The leading-order prediction t̂* is within "
               f"{100 * s['peak_prediction_rel_error_max']:.2g}% of the measured peak (median "
               f"{100 * s['peak_prediction_rel_error_median']:.2g}%, {s['examples']} examples); its error is "
               f"≤ {s['peak_error_over_first_order_max']:.3g} × its first-order estimate (tolerance: 2×). The measured "
               f"peak matches the exact closed-form root to {s['peak_vs_exact_root_max']:.1e}."]
    if "C9" in by and by["C9"].summary:
        s = by["C9"].summary
        md += [f"- **Balance vs anisotropy (C9).** κ(A), κ(B) up to {_fmt(s['max_kappa_A'])}, {_fmt(s['max_kappa_B'])}: "
               f"(κ∞ − 1)/ε ≤ {_fmt(s['max_kappa_eig_minus_1_over_epsilon'])} for the eigenvalue ratio; the "
               f"singular-value κ reached (κ − 1)/ε = {_fmt(s['max_kappa_sv_minus_1_over_epsilon'])}."]
    if "C9-wd" in by and by["C9-wd"].summary:
        for regime, v in by["C9-wd"].summary.get("regimes", {}).items():
            md += [f"- **Weight decay (C9-wd), {regime}:** {v['examples']} examples, status {', '.join(v['statuses'])}, "
                   f"μ/g_max ∈ [{v['mu_over_g_max'][0]:.3g}, {v['mu_over_g_max'][1]:.3g}]; min κ(t)/κ(0) = "
                   f"{v['min_kappa_over_kappa_0']:.6g}."]
    if "C10" in by and by["C10"].summary:
        md += _c10(by["C10"].summary)
    if "C11" in by and by["C11"].summary:
        md += _c11(by["C11"].summary)
    md += _weight_decay(data["analyses"]["mu_sweep"])
    if data["analyses"].get("kappa_stages"):
        md += _stages(data["analyses"]["kappa_stages"])
    return md + [""]
