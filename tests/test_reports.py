"""report.md quotes only this run's numbers; subset runs leave nothing stale; replay hints and figures work."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from hypothesis import strategies as st

from cdyn import claims
from cdyn import numerics
from cdyn import _report_figures as figs
from cdyn._report import write_report
from cdyn.cli import main
from cdyn.claims import c10_c11
from cdyn.claims._registry import _forget

# loadgroup: one report fixture shared by the module: written once, on one worker.
pytestmark = pytest.mark.xdist_group("reports")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sweep():
    from cdyn._report_findings import mu_sweep

    return mu_sweep()


@pytest.fixture
def quick_sweep(sweep, monkeypatch):
    """The weight-decay sweep is the same in every report (no claim input): compute it once here."""
    monkeypatch.setattr("cdyn._report.mu_sweep", lambda: sweep)


def _tiny_false() -> claims.Claim:
    """An expected-false claim that fails on x > 1/2: cheap, shrinks to a fixed point, replays exactly."""
    return claims.Claim(id="TINY-false", title="(mis-stated) x ≤ 1/2", statement="x ≤ 1/2 for x in [0, 1].",
                        latex=r"x \le 1/2", hypotheses=("x ∈ [0, 1]",),
                        strategy=lambda: st.fixed_dictionaries({"x": st.floats(0, 1)}),
                        check=lambda inst: claims.CheckResult(0.5 - inst["x"], {}), expected=False, examples=20)


def _small_c11(count: int, horizon: float) -> claims.Claim:
    """C11 on a smaller family (fewer instances, shorter horizon): same check, same summary, same text."""
    inst = {"family_seed": 0, "init": {"scale": 1e-3, "seed": 0}, **c10_c11.C11_SETUP,
            "count": count, "horizon": horizon}
    return dataclasses.replace(c10_c11.C11, strategy=lambda: st.builds(lambda s: inst | {"family_seed": s},
                                                                        st.integers(0, 50)))


def _small_c10(horizon: float, repeats: int) -> claims.Claim:
    inst = {"problem_seed": 0, "init": {"scale": 1e-3, "seed": 0}, **c10_c11.C10_SETUP, "horizon": horizon,
            "repeats": repeats, "gradient": {"scale": 0.5, "seed": 3, "batches": [4, 16, 64], "repeats": [60, 40, 30]}}
    return dataclasses.replace(c10_c11.C10, strategy=lambda: st.builds(lambda s: inst | {"problem_seed": s},
                                                                        st.integers(0, 50)))


def _report(tmp_path, name, results, seed):
    out = tmp_path / name
    data = write_report(out, results, seed=seed, examples=None, figures=False, command="test")
    return data, (out / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("count,horizon,seed", [(1, 4.0, 0), (2, 3.0, 5)])
def test_c11_text_follows_the_run(tmp_path, quick_sweep, count, horizon, seed):
    r = claims.run_claim(_small_c11(count, horizon), seed=seed)
    data, md = _report(tmp_path, "r", [r], seed)
    s = data["claims"][0]["summary"]
    assert s["instances"] == count and s["setup"]["horizon"] == horizon
    line = next(x for x in md.splitlines() if "(C11)" in x)
    c = s["clip_kappa_over_cca"]
    for text in (f"{s['held']}/{s['instances']}", f"median {c['median']:.4g}", f"horizon {horizon:g}",
                 f"{s['spectral_sgd_kappa_over_cca']['median']:.4g}", f"sin θ ≤ {s['max_sin_angle']:.2g}"):
        assert text in line, text
    seeds = s["problem_seeds"]
    assert (f"seeds {seeds[0]}–{seeds[-1]} ({count} instances" if count > 1 else f"seed {seeds[0]} (1 instance,") in line
    # No number from another experiment survives in the statement or hypotheses.
    for old in ("20/20", "0–19", "T = 30", "−0.55", "1.13 (1.06"):
        assert old not in md


def test_c10_text_follows_the_run(tmp_path, quick_sweep):
    texts = []
    for horizon, repeats, seed in ((1.0, 2, 0), (1.5, 3, 1)):
        r = claims.run_claim(_small_c10(horizon, repeats), seed=seed)
        data, md = _report(tmp_path, f"r{seed}", [r], seed)
        row = data["claims"][0]["summary"]["runs"][0]
        line = next(x for x in md.splitlines() if "(C10)" in x)
        assert f"T = {horizon:g}, {repeats} SGD seeds" in line
        assert f"problem seed {row['problem_seed']}." in line
        assert f"exponent {row['slope_n']:.3g} ± {row['slope_n_se']:.2g} in n" in line
        assert f"{row['slope_eta']:.3g} ± {row['slope_eta_se']:.2g} in η" in line
        texts.append(line)
    assert texts[0] != texts[1]
    hyp = " ".join(c10_c11.C10.hypotheses)
    assert f"T = {c10_c11.C10_SETUP['horizon']:g}" in hyp and f"{c10_c11.C10_SETUP['repeats']} SGD seeds" in hyp


def test_subset_run_leaves_nothing_stale_and_replay_hint_works_from_cwd(tmp_path, monkeypatch, capsys, quick_sweep):
    monkeypatch.chdir(tmp_path)
    claims.register(_tiny_false())
    try:
        assert main(["verify", "--claims", "TINY-false", "--out", "rep", "--no-figures"]) == 0
        md = (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")
        hint = re.search(r"`(cdyn verify --replay [^`]+)`", md).group(1)
        assert hint == "cdyn verify --replay rep/counterexamples/TINY-false.json"
        capsys.readouterr()
        assert main(shlex.split(hint)[1:]) == 0  # run from the directory verify ran in
        assert "reproduced exactly" in capsys.readouterr().out
        res = json.loads((tmp_path / "rep" / "results.json").read_text())
        checks = res["claims"][0]["examples"]
        assert f"| TINY-false | false | falsified | 20 | {checks} |" in md  # budget vs distinct checks
        assert main(["verify", "--claims", "C5", "--examples", "1", "--out", "rep", "--no-figures"]) == 0
    finally:
        _forget(["TINY-false"])
    assert not any((tmp_path / "rep" / "counterexamples").iterdir())
    md = (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")
    assert "TINY-false" not in md and "| budget | checks |" in md
    res = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert res["budgets"] == {"C5": 1} and [c["id"] for c in res["claims"]] == ["C5"]


def test_panel_of_a_claim_not_run_says_so(tmp_path):
    matplotlib.rcParams["svg.fonttype"] = "none"  # keep text as text, to read it back
    try:
        out = figs.cca_limit(tmp_path / "c.svg", [[0.5, 0.5]], [], ran=(True, False))
        text = (tmp_path / "c.svg").read_text()
    finally:
        matplotlib.rcParams["svg.fonttype"] = "path"
    assert out["c9_ran"] is False and "C9 was not run in this report" in text and "C8 was not run" not in text


def test_deflated_stage2_rates():
    # Decoupled: every deflation leaves the weak mode's rate at 2 g_k (the closed form of THEORY §5).
    d = numerics.decoupled_instance(numerics.DEFAULT_SPECTRUM_A, numerics.DEFAULT_SPECTRUM_B, sigma_A=0.1,
                                    sigma_B=0.1, seed=0)
    np.testing.assert_allclose(figs.deflated_rates(d.problem), 2 * d.g[-1], rtol=1e-10)
    # General: no deflation is 2 σ_k(C); the deflated rates differ from it.
    p = numerics.default_problem()
    rates = figs.deflated_rates(p)
    g_k = np.linalg.svd(p.C, compute_uv=False)[min(p.m, p.rank_C) - 1]
    assert rates[0] == pytest.approx(2 * g_k, rel=1e-10) and max(rates) > 1.2 * rates[0]


def test_weight_decay_rows_are_per_row(sweep):
    sw = sweep
    for row in sw["rows"]:
        if row["status"] == "diverged":  # the event time against the closed-form crossing of ‖W‖ = max_norm
            assert row["t_stop"] == pytest.approx(row["t_divergence_predicted"], rel=1e-6)
        assert (row["t_divergence_predicted"] is None) == (row["growing_modes"] == 0)
    assert len({row["t_stop"] for row in sw["rows"]}) > 3


def test_report_figure_formats(tmp_path, capsys):
    for fmt, head in (("pdf", b"%PDF-"), ("png", b"\x89PNG\r\n\x1a\n"), ("svg", b"<?xml")):
        figs.cca_limit(tmp_path / f"c.{fmt}", [], [], ran=(False, False))
        assert (tmp_path / f"c.{fmt}").read_bytes()[:len(head)] == head
    assert main(["verify", "--claims", "C5", "--format", "gif", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: format")


def test_quick_benchmark_never_writes_the_committed_figure(tmp_path, monkeypatch):
    import importlib.util

    import sys

    monkeypatch.setattr(sys, "path", list(sys.path))  # run.py puts benchmarks/ on the path: undo it after
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(bench, "HERE", tmp_path)  # where a full run writes scaling.png and last_run.*
    monkeypatch.setattr(bench, "plot", lambda curve, path: path.write_bytes(b"figure"))
    monkeypatch.setattr(bench.bench_scaling, "run", lambda quick: ([], {"quick": quick}))
    assert bench.main(["--quick", "--only", "scaling"]) == 0
    assert (tmp_path / "last_run" / "scaling.png").is_file() and not (tmp_path / "scaling.png").exists()
    assert bench.main(["--only", "scaling"]) == 0
    assert (tmp_path / "scaling.png").is_file()
