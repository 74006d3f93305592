"""`cdyn`: derive, simulate, verify, train, sweep. Bad input prints one line and exits 2."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from ._config import ConfigError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
    help="Contrastive-dynamics: derive, integrate and property-test the flow of Ren & Li (2023).",
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("contrastive-dynamics")
        except PackageNotFoundError:  # run from a source tree that was never installed
            v = "unknown (not installed)"
        print(f"cdyn (contrastive-dynamics) {v}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the installed version and exit."),
    plugin: Optional[List[Path]] = typer.Option(
        None, "--plugin", metavar="PATH",
        help="A .py file that registers loss terms and claims (repeatable; give it before the command). "
             "Installed entry points of the group cdyn.plugins load too."),
) -> None:
    """Contrastive-dynamics: derive, integrate and property-test the flow of Ren & Li (2023)."""
    from ._plugins import load_cli_plugins

    load_cli_plugins(list(plugin or []))


def _register() -> None:
    # Each command lives in its own module; importing it adds it to `app`.
    from . import _derive_cmd, _simulate_cmd  # noqa: F401
    for optional in ("_verify_cmd", "_train_cmd", "_sweep_cmd"):
        try:
            __import__(f"cdyn.{optional}")
        except ModuleNotFoundError as err:
            if err.name != f"cdyn.{optional}":
                raise


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    _register()
    try:
        rv = app(args=argv, standalone_mode=False)
    except (ConfigError, ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except MemoryError as e:
        # A real allocation failure that no budget predicted: one line, not a traceback.
        what = str(e).splitlines()[0] if str(e) else "an allocation failed"
        print(f"error: out of memory: {what} (raise --max-memory only if the machine has it)", file=sys.stderr)
        return 2
    except Exception as e:
        # Usage errors and exits come from click, or from the copy of click typer vendors:
        # recognise them by their interface rather than by class.
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):
            msg = e.format_message()
            if type(e).__name__ == "NoArgsIsHelpError":
                print(msg, file=sys.stderr)
            else:
                print(f"error: {msg.splitlines()[0] if msg else type(e).__name__}", file=sys.stderr)
            return 2
        if hasattr(e, "exit_code"):
            return int(e.exit_code)
        if type(e).__name__ == "Abort":
            print("error: aborted", file=sys.stderr)
            return 2
        raise
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
