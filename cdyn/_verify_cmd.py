"""`cdyn verify`: run the claims of THEORY §7 as property tests, print a table, write report/.

Exit status: 0 when every expected-true claim is verified and every expected-false claim
falsified, 1 otherwise, 2 on bad input (`main()` turns the ValueErrors below into one line).
"""

from __future__ import annotations

import functools
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from threadpoolctl import threadpool_limits

from cdyn import claims as claims_pkg

from ._plugins import _shell_word, rerun_hint
from .cli import app


def _replay(path: Path) -> int:
    # Size, depth, syntax and the record schema before anything else (claims._replay).
    record = claims_pkg.load_record(path)
    origin = record.get("plugin")
    if origin is not None and not claims_pkg.is_registered(str(record["claim"])):
        # Never load what a JSON file names: say what to load instead.
        raise ValueError(rerun_hint(str(record["claim"]), origin, path))
    for note in _plugin_notes(str(record["claim"]), origin):
        typer.echo(note)
    claim, res = claims_pkg.replay(record)
    stored = record.get("margin")
    same = claims_pkg.margins_equal(stored, res.margin)  # nan/inf margins are stored as strings
    typer.echo(f"{claim.id}: {claim.title}")
    typer.echo(f"replayed margin {float(res.margin)!r} (stored {stored!r}): "
               f"{'reproduced exactly' if same else 'DIFFERENT'}; the claim {'holds' if res.holds else 'fails'} here")
    return 0 if same else 1


def _plugin_notes(claim_id: str, recorded: object) -> list[str]:
    """Lines saying whether the loaded plugin is the one (same file, same bytes) that saved the record."""
    current = claims_pkg.claim_origin(claim_id)
    claim_id = repr(claim_id)
    if not isinstance(recorded, dict) or recorded.get("kind") != "file":
        return [] if current is None or recorded is not None else [
            f"note: {claim_id} now comes from {claims_pkg.describe_origin(current)}; the record names no plugin"]
    if current is None or current.get("kind") != "file":
        return [f"note: the record names plugin {_shell_word(str(recorded.get('path')))}, but {claim_id} is now "
                + ("built in" if current is None else f"from {claims_pkg.describe_origin(current)}")]
    notes = []
    if current.get("path") != recorded.get("path"):
        notes.append(f"note: the record names plugin {_shell_word(str(recorded.get('path')))}; {claim_id} is loaded from "
                     f"{current.get('path')}")
    if current.get("sha256") != recorded.get("sha256"):
        notes.append(f"note: plugin file {current.get('path')} differs from the one that saved this record "
                     f"(sha256 {str(recorded.get('sha256'))[:16]}… recorded, {str(current.get('sha256'))[:16]}… now)")
    return notes


def _table(results: list[claims_pkg.ClaimResult], examples: int | None) -> Table:
    from ._report import budget, checks_text

    t = Table(title="cdyn verify", caption="budget: examples Hypothesis may draw (the bar's total); checks: distinct "
                                           "checks made, incl. shrinking (+ local search)")
    for col in ("id", "expected", "result", "budget", "checks", "worst margin", "seconds", "ok"):
        t.add_column(col, justify="right" if col in ("budget", "checks", "worst margin", "seconds") else "left")
    for r in results:
        style = "green" if r.ok else "red"
        t.add_row(r.claim.id, str(r.claim.expected).lower(), f"[{style}]{r.result}[/{style}]",
                  str(budget(r, examples)), checks_text(r),
                  f"{r.worst_margin:.3g}", f"{r.seconds:.1f}", "✓" if r.ok else "✗")
    return t


def _with_budget(command: Callable[..., None]) -> Callable[..., None]:
    """Run the command inside `numerics.budget(--max-memory, --max-steps)` (its body stays unchanged)."""
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        from cdyn import numerics

        mem, steps = kwargs.get("max_memory"), kwargs.get("max_steps")
        if steps is not None and not (math.isfinite(steps) and steps > 0):
            raise ValueError(f"max_steps: must be a positive number, got {steps!r}")
        with numerics.budget(None if mem is None else numerics.parse_bytes(mem), steps, steps):
            return command(*args, **kwargs)
    return run


@app.command()
@_with_budget
def verify(
    claims: str = typer.Option(None, "--claims", help="Comma-separated claim ids [default: all registered]."),
    examples: int = typer.Option(None, "--examples",
                                 help="Example budget per claim [default: each claim's own budget, else 20]."),
    seed: int = typer.Option(0, "--seed", help="Hypothesis seed: the same seed gives the same examples.",
                             show_default=True),
    out: Path = typer.Option(Path("report"), "--out", help="Output directory (replaced whole).", show_default=True),
    replay: Path = typer.Option(None, "--replay", help="Re-run a saved counterexample JSON and compare its margin "
                                                      "[default: none, run the claims]."),
    no_figures: bool = typer.Option(False, "--no-figures", help="Skip the figures (faster) [default: draw them]."),
    fmt: str = typer.Option("png", "--format", help="Figure format: png, pdf or svg.", show_default=True),
    max_memory: str = typer.Option(None, "--max-memory", help="Memory budget of each check, e.g. 16G (default 4G)."),
    max_steps: float = typer.Option(None, "--max-steps",
                                    help="Budget of GD/SGD steps (default 1e7) and of a flow's RHS evaluations (default 1e6)."),
    workers: int = typer.Option(None, "--workers", help="Run the claims on an embedded Dask cluster of N single-threaded "
                                                        "worker processes (same results.json) [default: serial]."),
    scheduler: str = typer.Option(None, "--scheduler", help="Run the claims on the Dask cluster at this address, e.g. "
                                                            "tcp://127.0.0.1:8786 [default: serial]."),
) -> None:
    """Check every claim of THEORY §7 with Hypothesis; write report/ (table, counterexamples, figures)."""
    if replay is not None:
        raise typer.Exit(_replay(replay))
    from ._outputs import check_output_dir
    check_output_dir(out, replace_whole=True)  # before any work: a bad --out must not cost a whole run
    if examples is not None and examples < 1:
        raise ValueError(f"examples: must be >= 1, got {examples}")
    if seed < 0:
        raise ValueError(f"seed: must be >= 0, got {seed}")
    if fmt not in ("png", "pdf", "svg"):
        raise ValueError(f"format: expected png, pdf or svg, got {fmt!r}")
    engine = workers is not None or scheduler is not None
    if engine:
        from ._verify_dask import check_engine
        check_engine(scheduler, workers)  # bad count, bad or unreachable address: before any work
    chosen = claims_pkg.select(claims)
    err = Console(stderr=True)
    t0 = time.perf_counter()
    with Progress(TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=False) as bar:
        # The bar counts Hypothesis checks against the example budget; the table's "checks" also
        # counts shrinking and the local search, so it can pass the bar's total.
        tasks = {c.id: bar.add_task(c.id, total=examples or c.examples or claims_pkg.DEFAULT_EXAMPLES)
                 for c in chosen}
        err.print("progress bars: checks made / example budget of each claim", style="dim")

        def progress(claim: claims_pkg.Claim, calls: int, phase: str) -> None:
            task = tasks[claim.id]
            total = bar.tasks[task].total or 1
            bar.update(task, completed=min(calls, total), description=f"{claim.id} ({phase})")

        if engine:  # one task per claim on Dask; the same results in the same order
            from ._verify_dask import run_on_engine
            results = run_on_engine(chosen, examples=examples, seed=seed, scheduler=scheduler, workers=workers,
                                    bar=bar, tasks=tasks, progress=progress)
        else:
            results = []
            for c in chosen:
                results.append(claims_pkg.run_claim(c, examples=examples, seed=seed, progress=progress))
                r = results[-1]
                bar.update(tasks[c.id], completed=bar.tasks[tasks[c.id]].total, description=f"{c.id}: {r.result}")
    Console().print(_table(results, examples))
    from ._report import write_report

    command = "cdyn " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "cdyn verify"
    with err.status("writing the report and figures"), threadpool_limits(limits=1):
        write_report(out, results, seed=seed, examples=examples, figures=not no_figures, command=command, fmt=fmt)
    failed = [r.claim.id for r in results if not r.ok]
    verdict = "all as expected" if not failed else "NOT as expected: " + ", ".join(failed)
    typer.echo(f"wrote {out}/report.md, results.json, counterexamples/ ({time.perf_counter() - t0:.1f}s); {verdict}")
    raise typer.Exit(1 if failed else 0)
