"""The CLI as a user runs it: derive (and --check), simulate, one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cdyn import theory
from cdyn.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cdyn", *args], cwd=cwd, capture_output=True, text=True)


def test_derive_check_detects_staleness(tmp_path, monkeypatch):
    # The derivations are a pure function of theory/: render them once for the four uses below
    # (write; check = compare + count; check again), what is tested is the comparison with the files.
    rendered = theory.render_derivations()
    monkeypatch.setattr(theory, "render_derivations", lambda: dict(rendered))
    assert main(["derive", "--out", str(tmp_path)]) == 0
    assert main(["derive", "--check", "--out", str(tmp_path)]) == 0
    tex = sorted(tmp_path.glob("*.tex"))[0]
    tex.write_text(tex.read_text() + "% edited by hand\n")
    assert main(["derive", "--check", "--out", str(tmp_path)]) == 1


def test_derive_latex_prints_aligned_blocks(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # printing only (no --out, which would also write every derivation)
    assert main(["derive", "--latex"]) == 0
    out = capsys.readouterr().out
    assert r"\begin{aligned}" in out and r"\lambda W_{B} \Sigma_{B}" in out


def test_simulate_writes_outputs_and_is_reproducible(tmp_path):
    cfg = tmp_path / "small.toml"
    cfg.write_text("[run]\nt_end = 30.0\neta = 0.02\n[problem]\nseed = 3\n")
    for out in ("a", "b"):
        assert main(["simulate", "--config", str(cfg), "--out", str(tmp_path / out)]) == 0
    for name in ("trajectory.npz", "summary.json", "kappa_vs_time.png"):
        assert (tmp_path / "a" / name).is_file()
    sa, sb = (json.loads((tmp_path / o / "summary.json").read_text()) for o in ("a", "b"))
    for s in (sa, sb):
        s["flow"].pop("seconds")
    assert sa == sb
    k = sa["kappa"]
    assert k["peak"] > k["initial"] and k["final"] < k["peak"]


@pytest.mark.parametrize(
    "toml, field",
    [
        ("[problem]\nlam = -1.0\n", "lam"),
        ("[problem]\nbogus = 1\n", "[problem].bogus"),
        ("[problem]\nm = 'four'\n", "[problem].m"),
        ("[run]\nterms = ['pos', 'nope']\n", "nope"),
        ("[run]\neta = 0.0\n", "eta"),
        ("[problem\nm = 4\n", "malformed TOML"),
        ("[mystery]\nx = 1\n", "[mystery]"),
    ],
)
def test_bad_config_is_one_line_exit_2(tmp_path, capsys, toml, field):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    assert main(["simulate", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and field in lines[0], lines


def test_from_a_shell_errors_are_one_line_exit_2_without_traceback(tmp_path):
    """The same path in a fresh process, as a user's shell runs it (the cases above run in-process)."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[problem]\nlam = -1.0\n")
    res = run(["simulate", "--config", str(cfg), "--out", str(tmp_path / "o")], tmp_path)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:") and "lam" in lines[0], res.stderr
    res = run(["simulate", "--frobnicate"], tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr and "frobnicate" in res.stderr, res.stderr


def test_simulate_flags_override_the_config_and_captions_follow_the_run(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[run]\nt_end = 30.0\n[problem]\nseed = 3\nlam = 2.0\n")
    out = tmp_path / "o"
    assert main(["simulate", "--config", str(cfg), "--out", str(out), "--no-gd", "--t-end", "6", "--lam", "1",
                 "--seed", "1", "--init-scale", "0.01", "--format", "svg"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert (s["run"]["t_end"], s["problem"]["lam"], s["problem"]["seed"], s["init"]["scale"]) == (6.0, 1.0, 1, 0.01)
    assert s["flow"]["t_stop"] == 6.0 and s["kappa"]["limit_reached"] is False
    assert "not reached" in capsys.readouterr().out and "not reached" in s["kappa"]["description"]
    svg = (out / "kappa_vs_time.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and svg.rstrip().endswith("</svg>")
    # Positive pairs only diverge: the caption says so, with no stage-2 or CCA wording.
    assert main(["simulate", "--out", str(out), "--no-gd", "--terms", "pos", "--t-end", "40", "--format", "pdf"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["flow"]["status"] == "diverged" and s["kappa"]["limit_reached"] is None
    text = s["kappa"]["description"]
    assert text.startswith(f"terms pos: diverged at t = {s['flow']['t_stop']:.4g}") and "falls" not in text
    assert (out / "kappa_vs_time.pdf").read_bytes()[:5] == b"%PDF-"


@pytest.mark.parametrize("args, field", [(["--t-end", "-1"], "--t-end"), (["--lam", "-0.5"], "--lam"),
                                         (["--seed", "-1"], "--seed"), (["--init-scale", "0"], "--init-scale"),
                                         (["--terms", "pos,nope"], "nope"), (["--format", "gif"], "format")])
def test_simulate_bad_flags_are_one_line(tmp_path, capsys, args, field):
    assert main(["simulate", "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and field in err[0]


@pytest.mark.parametrize("command", ["simulate", "train", "verify"])
def test_help_shows_every_default(command, capsys):
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    opts = [line for line in text.split("Options:")[1].splitlines() if line.strip().startswith("--")]
    # Each option's block (its lines up to the next option) names a default, except --help.
    blocks = text.split("Options:")[1].split("\n  --")[1:]
    assert opts and all("default" in b for b in blocks if not b.startswith("help"))
