"""`cdyn derive`: print the flow (Unicode, LaTeX body or a complete document); on request write
derivations/ (`--write`), check it (`--check`) or build its PDF (`--pdf`).

stdout carries only what is printed (so `cdyn derive --latex > flows.tex` is valid LaTeX);
status lines go to stderr.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

import typer

from cdyn import theory
from cdyn.theory._derivations import derivations_document
from cdyn.theory._latex_document import display, document

from ._outputs import check_output_dir, staged_files
from .cli import app

DEFAULT_DIR = Path("derivations")
PDF_NAME = "derivations.pdf"
TEX_PACKAGES = "texlive-latex-base"  # article, amsmath, amssymb and their fonts (Debian)


def stale_files(directory: Path) -> list[str]:
    """Names of derivation files that are missing or differ from what theory/ produces now."""
    wanted = theory.render_derivations()
    out = [n for n, text in wanted.items()
           if not (directory / n).is_file() or (directory / n).read_text(encoding="utf-8") != text]
    extra = [p.name for p in directory.glob("*.tex") if p.name not in wanted] if directory.is_dir() else []
    return sorted(out + extra)


def flow_latex(names: tuple[str, ...]) -> str:
    """The flow of `names` as a LaTeX body: a `%` comment line and one display equation."""
    return f"% flow: {' + '.join(names)}\n{display(theory.gradient_flow(names).latex())}\n"


@app.command()
def derive(
    terms: str = typer.Option("pos,neg", help="Comma-separated loss terms of the printed flow."),
    latex: bool = typer.Option(False, "--latex", help="Print a LaTeX body (amsmath, amssymb) instead of Unicode."),
    standalone: bool = typer.Option(False, "--standalone", help="Print a complete LaTeX document (implies --latex)."),
    write: bool = typer.Option(False, "--write", help="Also write every derivation to OUT (default derivations/)."),
    check: bool = typer.Option(False, "--check", help="Only check that OUT is up to date (exit 1 if stale)."),
    pdf: bool = typer.Option(False, "--pdf", help="Only build OUT/derivations.pdf with pdflatex (OUT default: .)."),
    out: Optional[Path] = typer.Option(
        None, help="Directory for --write/--check (default derivations/) or --pdf (default .); "
                   "given alone, it means --write."),
) -> None:
    """Derive the gradient flow with SymPy and print it; write, check or typeset derivations/ on request."""
    if check + pdf + write > 1:
        raise ValueError("derive: give at most one of --write, --check, --pdf")
    names = tuple(t.strip() for t in terms.split(",") if t.strip())
    if check:
        _check(out or DEFAULT_DIR)
        return
    if pdf:
        _pdf(out or Path("."), names)
        return
    write = write or out is not None
    target = out or DEFAULT_DIR
    if write:
        check_output_dir(target)
    theory.gradient_flow(names)  # validate the names before printing anything
    if standalone:
        typer.echo(document(flow_latex(names)), nl=False)
    elif latex:
        typer.echo(flow_latex(names), nl=False)
    else:
        typer.echo(f"# terms: {', '.join(names)}")
        typer.echo(theory.gradient_flow(names).pretty())
    if write:
        _write(target, names)


def _check(directory: Path) -> None:
    fix = f"run `cdyn derive --write{'' if directory == DEFAULT_DIR else f' --out {directory}'}`"
    if not directory.is_dir():
        typer.echo(f"no derivations in {directory}/: the directory does not exist ({fix})", err=True)
        raise typer.Exit(1)
    stale = stale_files(directory)
    if stale:
        typer.echo(f"stale derivations in {directory}/: {', '.join(stale)} ({fix})", err=True)
        raise typer.Exit(1)
    typer.echo(f"{directory}/ is up to date ({len(theory.render_derivations())} files)", err=True)


def _write(out: Path, names: tuple[str, ...]) -> None:
    files = theory.render_derivations()
    with staged_files(out) as stage:  # every file or none replaces the old one
        for name, text in files.items():
            (stage / name).write_text(text, encoding="utf-8")
    for p in out.glob("*.tex"):
        if p.name not in files:
            p.unlink()
    typer.echo(f"wrote {len(files)} files to {out}/", err=True)
    plugin_terms = _plugin_terms(names)
    if plugin_terms:
        # Beside the built-in derivations (in a subdirectory, so `--check` of out/ ignores them).
        name = "+".join(names) + ".tex"
        with staged_files(out / "plugins") as stage:
            (stage / name).write_text(_plugin_tex(names, plugin_terms), encoding="utf-8")
        typer.echo(f"wrote {out}/plugins/{name} (terms from plugins: {', '.join(plugin_terms)})", err=True)


def _pdf(out: Path, names: tuple[str, ...]) -> None:
    """Typeset every derivation (and the flow of `names` if a plugin gave a term) into OUT/derivations.pdf."""
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        raise ValueError(f"--pdf needs pdflatex, which is not installed: on Debian/Ubuntu `apt-get install "
                         f"{TEX_PACKAGES}`; or run `cdyn derive --write` and compile derivations/*.tex elsewhere")
    check_output_dir(out)
    theory.gradient_flow(names)
    plugin_terms = _plugin_terms(names)
    extra = ("\n\\section*{Flow of the requested terms}\n" + _plugin_tex(names, plugin_terms)) if plugin_terms else ""
    tex = derivations_document(extra)
    with tempfile.TemporaryDirectory(prefix="cdyn-pdf-") as tmp:
        (Path(tmp) / "derivations.tex").write_text(tex, encoding="utf-8")
        proc = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "derivations.tex"],
                              cwd=tmp, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 or not (Path(tmp) / "derivations.pdf").is_file():
            first = next((ln for ln in proc.stdout.splitlines() if ln.startswith("!")), f"exit {proc.returncode}")
            raise ValueError(f"--pdf: pdflatex failed: {first}")
        with staged_files(out) as stage:
            shutil.copyfile(Path(tmp) / "derivations.pdf", stage / PDF_NAME)
    typer.echo(f"wrote {out / PDF_NAME}", err=True)


def _tex_name(name: str) -> str:
    """A term name in `\\mathrm{}`: underscores are letters there, not subscripts."""
    return name.replace("_", r"\_")


def _plugin_terms(names: tuple[str, ...]) -> dict[str, dict]:
    """{term: origin} for the named terms that a plugin added (none unless a plugin was loaded)."""
    if "cdyn.claims._plugins" not in sys.modules:
        return {}
    from cdyn.claims import term_origin

    return {n: o for n in names if (o := term_origin(n)) is not None}


def _plugin_tex(names: tuple[str, ...], origins: dict[str, dict]) -> str:
    """The user's terms and the flow they give, as LaTeX (same layout as the files of derivations/)."""
    from cdyn.claims import describe_origin

    tex = [f"% Flow of {' + '.join(names)} -- generated by `cdyn derive --write`; do not edit.",
           r"% needs \usepackage{amsmath,amssymb}", ""]
    for n, origin in origins.items():
        term = theory.get_term(n)
        tex += [f"% {n}: from {describe_origin(origin)}",
                display(rf"L_{{\mathrm{{{_tex_name(n)}}}}} = {theory.latex(term.weight)}\,\left({theory.latex(term.expr)}\right)"),
                ""]
    tex += [flow_latex(names)]
    return "\n".join(tex)
