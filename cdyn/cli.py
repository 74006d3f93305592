"""`cdyn`: derive, simulate, verify, train. Bad input prints one line and exits 2."""

from __future__ import annotations

import sys

import click
import typer

from ._config import ConfigError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Contrastive-dynamics: derive, integrate and property-test the flow of Ren & Li (2023).",
)


def _register() -> None:
    # Each command lives in its own module; importing it adds it to `app`.
    from . import _derive_cmd, _simulate_cmd  # noqa: F401
    for optional in ("_verify_cmd", "_train_cmd"):
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
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        print("error: aborted", file=sys.stderr)
        return 2
    except click.ClickException as e:
        print(f"error: {e.format_message()}", file=sys.stderr)
        return 2
    except (ConfigError, ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
