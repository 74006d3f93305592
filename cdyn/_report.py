"""`report/`: results.json (deterministic: no timings), report.md, counterexamples/*.json, figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cdyn.claims import DEFAULT_EXAMPLES, ClaimResult, claim_origin

from ._common import jsonable, write_json
from ._outputs import staged_directory
from ._plots import FORMATS
from ._plugins import _shell_word
from ._report_findings import findings, mu_sweep

FIGURES = {
    "kappa_stages": "κ(t) on the default instance for positive pairs only (grows until the weights diverge), "
                        "negative pairs only (from the same small init it stays put; started at the peak it brings κ "
                        "down), and the full loss (rises in stage 1, falls in stage 2). Vertical line: the stage "
                        "boundary t*; dash-dotted: the CCA limit (ρ₁/ρ_k)². The dashed eigenvalue ratio of M reaches "
                        "the limit; the singular-value κ settles slightly above it (C8-false).",
    "closed_form_modes": "Left: each mode's q_i(t) from the matrix flow (circles, projected on the aligned basis "
                             "of a decoupled instance with d = 8) on the dsolve logistic (lines), saturating at ρ_i²/λ. "
                             "Right: κ(t), the exact peak (root of the closed-form d log κ/dt) and the leading-order "
                             "prediction t̂*.",
    "flow_vs_gd": "Left: κ(t) of gradient descent at four step sizes against the flow. Right: the gap "
                      "‖W_GD(T) − W_flow(T)‖ halves with η (first order).",
    "cca_limit": "Left: eigenvalues of λM at the end of every C8 run against the squared canonical correlations "
                     "they were built with. Right: C9 runs — (κ∞ − 1)/ε for the eigenvalue ratio stays below 1 (the "
                     "noise bound) as κ(A)κ(B) grows to 1e6; the singular-value κ is shown for contrast (it is not "
                     "pinned by CCA, see C8-false). A panel whose claim was not run says so.",
}


def budget(r: ClaimResult, examples: int | None) -> int:
    """The Hypothesis example budget the claim ran with (the progress bar's total)."""
    return int(examples or r.claim.examples or DEFAULT_EXAMPLES)


def checks_text(r: ClaimResult) -> str:
    """Distinct checks made: Hypothesis's (examples, shrinking) + the second stage's local search."""
    h, loc = r.checks.get("hypothesis", r.examples), r.checks.get("local_search", 0)
    return f"{r.examples} ({h} + {loc})" if loc else str(r.examples)


def _table(results: list[ClaimResult], examples: int | None, seconds: bool = True) -> list[str]:
    head = ("| id | expected | result | budget | checks | worst margin |" + (" seconds |" if seconds else "")
            + " ok |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        rows.append(f"| {r.claim.id} | {str(r.claim.expected).lower()} | {r.result} | {budget(r, examples)} | "
                    f"{checks_text(r)} | {r.worst_margin:.3g} |" + (f" {r.seconds:.1f} |" if seconds else "")
                    + f" {'✓' if r.ok else '✗'} |")
    return rows


def replay_command(claim_id: str, out: str | Path) -> str:
    """The shell line that replays a saved counterexample from the directory `cdyn verify` ran in."""
    origin = claim_origin(claim_id)
    plugin = f"--plugin {_shell_word(str(origin['path']))} " if origin and origin.get("kind") == "file" else ""
    return f"cdyn {plugin}verify --replay {_shell_word(str(Path(out) / 'counterexamples' / f'{claim_id}.json'))}"


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
                 command: str, fmt: str = "png") -> dict[str, Any]:
    """Build the whole report in a hidden sibling of `out` and swap it in: `out` is always one
    run's report (no file of an earlier run survives), and a run that fails or is interrupted
    leaves the previous report intact. Figures are written as `fmt` (png, pdf or svg)."""
    if fmt not in FORMATS:
        raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    with staged_directory(out) as stage:
        return _write_report(stage, results, seed=seed, examples=examples, figures=figures, command=command,
                             fmt=fmt, shown_out=out)


def _write_report(out: Path, results: list[ClaimResult], *, seed: int, examples: int | None, figures: bool,
                  command: str, fmt: str, shown_out: Path) -> dict[str, Any]:
    ce_dir = out / "counterexamples"
    ce_dir.mkdir()
    for r in results:
        if r.counterexample is not None:
            write_json(ce_dir / f"{r.claim.id}.json", r.counterexample)
    extra: dict[str, Any] = {"mu_sweep": mu_sweep()}
    if figures:
        from . import _report_figures as figs  # matplotlib only when figures are drawn

        by = {r.claim.id: r for r in results}
        extra["kappa_stages"] = figs.kappa_stages(out / f"kappa_stages.{fmt}")
        extra["closed_form_modes"] = figs.closed_form_modes(out / f"closed_form_modes.{fmt}")
        extra["flow_vs_gd"] = figs.flow_vs_gd(out / f"flow_vs_gd.{fmt}")
        c8 = by["C8"].summary.get("points", []) if "C8" in by else []
        c9 = by["C9"].summary.get("points", []) if "C9" in by else []
        extra["cca_limit"] = figs.cca_limit(out / f"cca_limit.{fmt}", c8, c9, ("C8" in by, "C9" in by))
    data = {"seed": seed, "examples_option": examples, "figure_format": fmt if figures else None,
            "budgets": {r.claim.id: budget(r, examples) for r in results}, "ok": all(r.ok for r in results),
            "claims": [r.as_json() for r in results], "analyses": extra}
    data = jsonable(data, nonfinite_as_str=False)  # the markdown formats inf/nan itself
    write_json(out / "results.json", data)
    (out / "report.md").write_text(_markdown(results, data, figures, command, shown_out), encoding="utf-8")
    return data


def _markdown(results: list[ClaimResult], data: dict[str, Any], figures: bool, command: str, out: Path) -> str:
    ok = data["ok"]
    md = ["# cdyn verify report", "", f"Command: `{command}` — seed {data['seed']}.", "",
          f"**Verdict: {'every claim came out as expected' if ok else 'some claims did NOT come out as expected'}** "
          "(expected-true claims verified, expected-false claims falsified).", "", *_table(results, data["examples_option"]),
          "", "*budget*: the examples Hypothesis may generate for the claim (`--examples`, else the claim's own; the "
          "progress bar's total). *checks*: the distinct checks actually made — Hypothesis's examples, its shrinking "
          "of a counterexample, and (in parentheses, Hypothesis + local search) the second stage's local search; "
          "it can be below the budget (Hypothesis stops early on a small search space) or above it (shrinking). "
          "*margin*: how far the claim is from failing on an example (≥ 0 holds; each claim says what it measures). "
          "Seconds are wall time and are not in `results.json`, which is identical for a given seed.", ""]
    falsified = [r for r in results if r.counterexample]
    if falsified:
        md += ["## Counterexamples (shrunk by Hypothesis)", "",
               "Replay any of them exactly with the command under it, from the directory `cdyn verify` ran in.", ""]
        md += [f"- {counterexample_line(r)}\n  `{replay_command(r.claim.id, out)}`" for r in falsified] + [""]
    md += findings(results, data)
    md += ["## Claims", ""]
    for r in results:
        c = r.claim
        md += [f"### {c.id} — {c.title}", "", f"*Expected {'true' if c.expected else 'false'}; result: "
               f"{r.result}; budget {budget(r, data['examples_option'])}, checks {checks_text(r)}; worst margin "
               f"{r.worst_margin:.3g}.*", "", c.statement, "",
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
        for stem, caption in FIGURES.items():
            name = f"{stem}.{data['figure_format']}"
            md += [f"![{name}]({name})", "", f"*{caption}*", ""]
    md += ["## Derivations", "", "Every closed form used above (per-mode ODEs, logistic and exponential solutions, "
           "the κ growth law, the split of d log κ/dt, the peak time, the CCA fixed point) is derived by SymPy in "
           "`theory/` and rendered in `derivations/` (`cdyn derive`).", ""]
    return "\n".join(md)
