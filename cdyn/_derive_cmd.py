"""`cdyn derive`: print the flows and (re)write derivations/; `--check` fails when stale."""

from __future__ import annotations

from pathlib import Path

import typer

import theory

from .cli import app

DEFAULT_DIR = Path("derivations")


def stale_files(directory: Path) -> list[str]:
    """Names of derivation files that are missing or differ from what theory/ produces now."""
    wanted = theory.render_derivations()
    out = [n for n, text in wanted.items()
           if not (directory / n).is_file() or (directory / n).read_text(encoding="utf-8") != text]
    extra = [p.name for p in directory.glob("*.tex") if p.name not in wanted] if directory.is_dir() else []
    return sorted(out + extra)


@app.command()
def derive(
    terms: str = typer.Option("pos,neg", help="Comma-separated loss terms for the printed flow."),
    latex: bool = typer.Option(False, "--latex", help="Print LaTeX instead of Unicode."),
    out: Path = typer.Option(DEFAULT_DIR, help="Directory of the generated derivations."),
    check: bool = typer.Option(False, "--check", help="Only check that OUT is up to date (exit 1 if stale)."),
) -> None:
    """Derive the gradient flow with SymPy, print it, and write derivations/."""
    if check:
        stale = stale_files(out)
        if stale:
            typer.echo(f"stale derivations in {out}/: {', '.join(stale)} (run `cdyn derive`)", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out}/ is up to date ({len(theory.render_derivations())} files)")
        return
    names = tuple(t.strip() for t in terms.split(",") if t.strip())
    theory.gradient_flow(names)  # validate the names before printing anything
    for group in (("pos",), ("neg",), names):
        flow = theory.gradient_flow(group)
        typer.echo(f"# terms: {', '.join(group)}")
        typer.echo(flow.latex() if latex else flow.pretty())
        typer.echo("")
    out.mkdir(parents=True, exist_ok=True)
    files = theory.render_derivations()
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    for p in out.glob("*.tex"):
        if p.name not in files:
            p.unlink()
    typer.echo(f"wrote {len(files)} files to {out}/")
