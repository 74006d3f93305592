r"""LaTeX compiles as printed: every generated file and every `cdyn derive --latex` output goes
through pdflatex (one combined document), which must report no error and no overfull box.

The line breaker (`theory._latex_layout`) only *estimates* widths; pdflatex is the judge.
Skipped only where pdflatex is absent; `.ci/run` installs it from Debian's packages.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import sympy as sp

from cdyn import theory
from cdyn import _derive_cmd
from cdyn.cli import main
from cdyn.theory._latex_document import display, document
from cdyn.theory._latex_layout import fit, width
from cdyn.theory.symbols import Sigma_A, Sigma_B, W_A, W_B

PDFLATEX = shutil.which("pdflatex")
needs_tex = pytest.mark.skipif(
    PDFLATEX is None, reason="pdflatex is not installed (apt-get install texlive-latex-base); "
                             ".ci/run installs it")
TERM_SETS = ("pos", "neg", "pos,neg", "pos,neg,wd", "pos,nu_variance")


@pytest.fixture()
def nu_term():
    """A user term whose weight is a Greek symbol, as in the README's plugin example."""
    theory.register_term("nu_variance", (sp.Trace(W_A * Sigma_A * W_A.T) + sp.Trace(W_B * Sigma_B * W_B.T)) / 2,
                         weight=sp.Symbol("nu"), replace=True)
    yield
    theory.unregister_term("nu_variance")


def _printed(args: list[str], capsys) -> str:
    capsys.readouterr()
    assert main(args) == 0
    return capsys.readouterr().out


def _pdflatex(tex: str, where: Path) -> str:
    """Compile `tex` once; return the log after asserting no error and no overfull box."""
    (where / "doc.tex").write_text(tex, encoding="utf-8")
    proc = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                          cwd=where, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "max_print_line": "100000"})  # log lines unwrapped
    log = (where / "doc.log").read_text(encoding="utf-8", errors="replace")
    errors = [ln for ln in log.splitlines() if ln.startswith("!")]
    assert proc.returncode == 0 and not errors, errors or proc.stdout[-2000:]
    overfull = re.findall(r"^Overfull \\[hv]box .*$", log, re.M)
    assert not overfull, overfull
    assert (where / "doc.pdf").is_file()
    return log


@needs_tex
def test_generated_files_and_latex_output_compile_without_overfull_boxes(tmp_path, capsys, nu_term, monkeypatch):
    # The derivations are a pure function of theory/: rendered once for --write and the file count.
    rendered = theory.render_derivations()
    monkeypatch.setattr(theory, "render_derivations", lambda: dict(rendered))
    gen = tmp_path / "derivations"
    assert main(["derive", "--write", "--out", str(gen)]) == 0
    files = sorted(gen.glob("*.tex"))
    assert len(files) == len(theory.render_derivations()) - 1  # every section; README.md is the other
    body = [rf"\section*{{{f.stem.replace('_', ' ')}}}" + "\n" + rf"\input{{derivations/{f.name}}}" for f in files]
    for terms in TERM_SETS:
        printed = _printed(["derive", "--latex", "--terms", terms], capsys)
        assert printed.startswith("% flow: ")
        body.append(rf"\section*{{--latex --terms {terms.replace('_', ' ')}}}" + "\n" + printed)
    # What a notebook shows for each derived result, in the same document.
    for obj in (theory.gradient_flow(("pos", "neg", "wd")), theory.structured_flow(("pos", "neg")),
                theory.reduced_flow(("pos", "neg")), theory.batch_term("neg"),
                theory.decoupled.decoupled_flow(("pos", "neg", "wd"))):
        shown = obj._repr_latex_()
        assert shown.startswith("$$") and shown.endswith("$$") and "^{T}" not in shown
        body.append(rf"\section*{{{type(obj).__name__}}}" + "\n" + display(shown.strip("$").strip(), numbered=False))
    log = _pdflatex(document("\n".join(body)), tmp_path)
    assert all(f"derivations/{f.name}" in log for f in files)  # every file was read


@needs_tex
def test_standalone_output_is_a_complete_document(tmp_path, capsys, nu_term):
    tex = _printed(["derive", "--standalone", "--terms", "pos,nu_variance"], capsys)
    assert tex.startswith(r"\documentclass{article}") and r"\usepackage{amsmath,amssymb}" in tex
    assert r"\nu" in tex and "^{T}" not in tex
    _pdflatex(tex, tmp_path)


@needs_tex
def test_pdf_is_built(tmp_path, capsys):
    assert main(["derive", "--pdf", "--out", str(tmp_path)]) == 0
    pdf = tmp_path / "derivations.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert capsys.readouterr().out == ""  # status on stderr only


def test_pdf_without_pdflatex_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_derive_cmd.shutil, "which", lambda name: None)
    assert main(["derive", "--pdf", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "apt-get install texlive-latex-base" in err[0], err
    assert not (tmp_path / "derivations.pdf").exists()


def test_terms_prints_exactly_the_terms_asked_for(capsys):
    out = _printed(["derive", "--latex", "--terms", "pos"], capsys)
    assert re.findall(r"^% flow: .*$", out, re.M) == ["% flow: pos"]
    assert r"\lambda" not in out and out.count(r"\begin{equation}") == 1
    uni = _printed(["derive", "--terms", "neg"], capsys)
    assert uni.splitlines()[0] == "# terms: neg" and "λ" in uni and "Cᵀ" not in uni


def test_printing_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (["derive"], ["derive", "--latex"], ["derive", "--standalone"]):
        out = _printed(args, capsys)
        assert out and "wrote" not in out
    assert list(tmp_path.iterdir()) == []
    assert main(["derive", "--check"]) == 1  # nothing to check, and still nothing created
    assert "does not exist" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    assert main(["derive", "--write"]) == 0  # writing is asked for explicitly (--check: tests/test_cli.py)
    assert (tmp_path / "derivations" / "flows.tex").is_file()


def test_latex_body_is_comments_and_display_math_only(capsys):
    out = _printed(["derive", "--latex", "--terms", "pos,neg,wd"], capsys)
    depth = 0
    for line in out.splitlines():
        depth += line.startswith(r"\begin{equation}")
        assert depth or line.startswith("%") or not line.strip(), f"text outside display math: {line!r}"
        depth -= line.startswith(r"\end{equation}")


def test_fit_breaks_only_what_is_too_wide():
    short = r"\frac{dW_A}{dt} = W_{B} C^{\top}"
    assert fit(short) == short
    flow = theory.gradient_flow(("pos", "neg", "wd")).latex()
    assert fit(flow) == flow  # already fitted: idempotent
    long = " + ".join(rf"W_{{{i}}} \Sigma_{{A}} W_{{{i}}}^{{\top}}" for i in range(30))
    broken = fit(rf"L = {long}", budget=200.0)
    lines = broken.split(r"\\")
    assert len(lines) > 3 and all(width(ln.replace("&", "")) <= 200.0 for ln in lines[1:-1])
    # Nothing is lost or reordered by the break.
    squash = re.sub(r"\\begin\{aligned\}|\\end\{aligned\}|\\\\|&|\\qquad|\{\}|\s", "", broken)
    assert squash == re.sub(r"\s", "", rf"L = {long}")
