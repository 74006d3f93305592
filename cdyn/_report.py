"""`report/`: results.json (deterministic: no timings), report.md, counterexamples/*.json, figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

import numerics
from claims import ClaimResult

from . import _report_figures as figs
from ._common import jsonable, write_json
from ._outputs import staged_directory

FIGURES = {
    "kappa_stages.png": "κ(t) on the default instance for positive pairs only (grows until the weights diverge), "
                        "negative pairs only (from the same small init it stays put; started at the peak it brings κ "
                        "down), and the full loss (rises in stage 1, falls in stage 2). Vertical line: the stage "
                        "boundary t*; dash-dotted: the CCA limit (ρ₁/ρ_k)². The dashed eigenvalue ratio of M reaches "
                        "the limit; the singular-value κ settles slightly above it (C8-false).",
    "closed_form_modes.png": "Left: each mode's q_i(t) from the matrix flow (circles, projected on the aligned basis "
                             "of a decoupled instance with d = 8) on the dsolve logistic (lines), saturating at ρ_i²/λ. "
                             "Right: κ(t), the exact peak (root of the closed-form d log κ/dt) and the leading-order "
                             "prediction t̂*.",
    "flow_vs_gd.png": "Left: κ(t) of gradient descent at four step sizes against the flow. Right: the gap "
                      "‖W_GD(T) − W_flow(T)‖ halves with η (first order).",
    "cca_limit.png": "Left: eigenvalues of λM at the end of every C8 run against the squared canonical correlations "
                     "they were built with. Right: C9 runs — (κ∞ − 1)/ε for the eigenvalue ratio stays below 1 (the "
                     "noise bound) as κ(A)κ(B) grows to 1e6; the singular-value κ is shown for contrast (it is not "
                     "pinned by CCA, see C8-false).",
}


def mu_sweep() -> list[dict[str, Any]]:
    """Positive pairs + weight decay on the default spectra (decoupled): which μ diverges, and κ vs the law."""
    d0 = numerics.decoupled_instance(numerics.DEFAULT_SPECTRUM_A, numerics.DEFAULT_SPECTRUM_B, seed=0)
    g_max, g_min = float(d0.g.max()), float(d0.g.min())
    rows = []
    for frac in (0.0, 0.05, 0.2, 0.5, 0.9, 1.1, 1.5):
        mu = frac * g_max
        d = numerics.decoupled_instance(numerics.DEFAULT_SPECTRUM_A, numerics.DEFAULT_SPECTRUM_B, mu=mu, seed=0)
        tr = numerics.integrate(d.problem, *d.init(np.full(d.r, 0.01), np.full(d.r, 0.01)), 40.0, ("pos", "wd"),
                                rtol=1e-10, atol=1e-14, n_points=81, max_norm=1e6, method="LSODA", jac=False)
        # Compare κ with the law where σ_k(M) is resolved (κ ≤ 1e8; beyond, σ_k < ε·σ_1 is round-off).
        law = lambda t: float(numerics.kappa_law(t, g_max, g_min))  # noqa: E731
        t_cmp = min(float(tr.t_stop), float(np.log(1e8 / law(0.0)) / (2 * (g_max - g_min))))
        k = numerics.kappa(d.problem, *tr.at(t_cmp))
        rows.append({"mu_over_g_max": frac, "mu": mu, "growing_modes": int(np.sum(d.g > mu)), "status": tr.status,
                     "t_stop": float(tr.t_stop), "norm_end": float(np.linalg.norm(tr.W_A[-1])),
                     "t_compare": t_cmp, "kappa": k, "law": law(t_cmp)})
    return rows


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


def _table(results: list[ClaimResult], seconds: bool = True) -> list[str]:
    head = "| id | expected | result | examples | worst margin |" + (" seconds |" if seconds else "") + " ok |"
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        rows.append(f"| {r.claim.id} | {str(r.claim.expected).lower()} | {r.result} | {r.examples} | "
                    f"{r.worst_margin:.3g} |" + (f" {r.seconds:.1f} |" if seconds else "") + f" {'✓' if r.ok else '✗'} |")
    return rows


def counterexample_line(r: ClaimResult) -> str:
    """One line: the shrunk instance's essentials and its margin."""
    ce = r.counterexample or {}
    inst = {k: v for k, v in ce.get("instance", {}).items() if k not in ("seed",)}
    m = ce.get("margin", float("nan"))
    m = f"{m:.3g}" if isinstance(m, (int, float)) else str(m)  # non-finite margins are stored as strings
    how = f", found by {r.found_by}" if r.found_by else ""
    why = f"; {ce['reason']}" if ce.get("reason") else ""
    return f"**{r.claim.id}** (margin {m}{how}{why}): `{json.dumps(jsonable(inst))}`"


def write_report(out: Path, results: list[ClaimResult], *, seed: int, examples: int | None, figures: bool,
                 command: str) -> dict[str, Any]:
    """Build the whole report in a hidden sibling of `out` and swap it in: `out` is always one
    run's report, and a run that fails or is interrupted leaves the previous report intact."""
    with staged_directory(out) as stage:
        return _write_report(stage, results, seed=seed, examples=examples, figures=figures, command=command)


def _write_report(out: Path, results: list[ClaimResult], *, seed: int, examples: int | None, figures: bool,
                  command: str) -> dict[str, Any]:
    ce_dir = out / "counterexamples"
    ce_dir.mkdir()
    for r in results:
        if r.counterexample is not None:
            write_json(ce_dir / f"{r.claim.id}.json", r.counterexample)
    extra: dict[str, Any] = {"mu_sweep": mu_sweep()}
    if figures:
        by = {r.claim.id: r for r in results}
        extra["kappa_stages"] = figs.kappa_stages(out / "kappa_stages.png")
        extra["closed_form_modes"] = figs.closed_form_modes(out / "closed_form_modes.png")
        extra["flow_vs_gd"] = figs.flow_vs_gd(out / "flow_vs_gd.png")
        c8 = by["C8"].summary.get("points", []) if "C8" in by else []
        c9 = by["C9"].summary.get("points", []) if "C9" in by else []
        extra["cca_limit"] = figs.cca_limit(out / "cca_limit.png", c8, c9)
    data = {"seed": seed, "examples_option": examples, "ok": all(r.ok for r in results),
            "claims": [r.as_json() for r in results], "analyses": extra}
    data = jsonable(data, nonfinite_as_str=False)  # the markdown formats inf/nan itself
    write_json(out / "results.json", data)
    (out / "report.md").write_text(_markdown(results, data, figures, command), encoding="utf-8")
    return data


def _markdown(results: list[ClaimResult], data: dict[str, Any], figures: bool, command: str) -> str:
    ok = data["ok"]
    md = ["# cdyn verify report", "", f"Command: `{command}` — seed {data['seed']}.", "",
          f"**Verdict: {'every claim came out as expected' if ok else 'some claims did NOT come out as expected'}** "
          "(expected-true claims verified, expected-false claims falsified).", "", *_table(results), "",
          "*margin*: how far the claim is from failing on an example (≥ 0 holds; each claim says what it measures). "
          "Seconds are wall time and are not in `results.json`, which is identical for a given seed.", ""]
    falsified = [r for r in results if r.counterexample]
    if falsified:
        md += ["## Counterexamples (shrunk by Hypothesis)", "",
               "Replay any of them exactly with `cdyn verify --replay counterexamples/<ID>.json`.", ""]
        md += [f"- {counterexample_line(r)}" for r in falsified] + [""]
    md += _findings(results, data)
    md += ["## Claims", ""]
    for r in results:
        c = r.claim
        md += [f"### {c.id} — {c.title}", "", f"*Expected {'true' if c.expected else 'false'}; result: "
               f"{r.result}; {r.examples} examples; worst margin {r.worst_margin:.3g}.*", "", c.statement, "",
               "$$", c.latex, "$$", "", "Hypotheses:", ""] + [f"- {h}" for h in c.hypotheses] + [""]
        if c.margin_meaning:
            md += [f"Margin: {c.margin_meaning}.", ""]
        if r.error:
            md += [f"**Error:** `{r.error}`", ""]
        summ = {k: v for k, v in r.summary.items() if k != "points"}
        if summ:
            md += ["Summary over the examples: `" + json.dumps(jsonable(summ)) + "`", ""]
    if figures:
        md += ["## Figures", ""]
        for name, caption in FIGURES.items():
            md += [f"![{name}]({name})", "", f"*{caption}*", ""]
    md += ["## Derivations", "", "Every closed form used above (per-mode ODEs, logistic and exponential solutions, "
           "the κ growth law, the split of d log κ/dt, the peak time, the CCA fixed point) is derived by SymPy in "
           "`theory/` and rendered in `derivations/` (`cdyn derive`).", ""]
    return "\n".join(md)


def _findings(results: list[ClaimResult], data: dict[str, Any]) -> list[str]:
    by = {r.claim.id: r for r in results}
    md = ["## Findings", ""]
    if "C6" in by and by["C6"].summary:
        s = by["C6"].summary
        md += [f"- **Peak time (C6).** The leading-order prediction t̂* is within "
               f"{100 * s['peak_prediction_rel_error_max']:.2g}% of the measured peak (median "
               f"{100 * s['peak_prediction_rel_error_median']:.2g}%); its error is "
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
                   f"μ/g_max ∈ [{v['mu_over_g_max'][0]:.3g}, {v['mu_over_g_max'][1]:.3g}]; κ never fell below κ(0)."]
    md += ["", "Positive pairs + weight decay on the default spectra (decoupled, w₀ = 0.01, horizon 40). Mode i grows "
           "iff g_i > μ (`completed` with a growing mode: ‖W‖ had not reached 1e6 by t = 40); κ is compared with the "
           "μ-free law at the last time t where κ ≤ 1e8 is still resolved by the SVD:", "",
           "| μ/g_max | growing modes (g_i > μ) | predicted | status | t_stop | ‖W_A‖ at t_stop | t | κ(t) | "
           "law κ(C)e^{2(g_max−g_min)t} | rel. error |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for row in data["analyses"]["mu_sweep"]:
        predicted = "‖W‖ → ∞" if row["growing_modes"] else "W → 0"
        md.append(f"| {row['mu_over_g_max']:g} | {row['growing_modes']} | {predicted} | {row['status']} | "
                  f"{row['t_stop']:.3g} | {row['norm_end']:.3g} | {row['t_compare']:.3g} | {row['kappa']:.8g} | "
                  f"{row['law']:.8g} | {abs(row['kappa'] / row['law'] - 1):.1e} |")
    ks = data["analyses"].get("kappa_stages")
    if ks:
        st = ks["stages"]
        md += ["", "Stages of the full flow on the default instance (`numerics.detect_stages`):", "",
               f"- peak t* = {st['t_peak']:.3f}, κ: {st['kappa_initial']:.3g} → {st['kappa_peak']:.3g} → "
               f"{st['kappa_final']:.4g} (eigenvalue ratio {ks['kappa_final_eig']:.4g}; CCA limit {st['kappa_limit']:.4g});",
               f"- stage-1 slope of log κ {st['stage1_rate']:.3g} (aligned-mode prediction 2(g₁ − g_k) = "
               f"{st['stage1_predicted']:.3g}; this instance starts unaligned, from a random init);",
               f"- stage-2 slope {st['stage2_rate']:.3g} (prediction −2g_k = {st['stage2_predicted']:.3g});",
               f"- time to balance (κ ≤ {st['balance_threshold']:.3g}): {_fmt(st['t_balance'])}."]
    return md + [""]
