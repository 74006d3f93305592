"""`cdyn sweep plot STORE --x FIELD [--y FIELD] --z OUTCOME`: a figure of a sweep store.

A plain function with typer annotations; `cdyn sweep` registers it as its `plot` command. It prints
the figure's path, its title and caption (computed from the data) and any fitted slopes.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ._plots import FORMATS, check_format


def default_out(store: Path, x: str, y: str | None, z: str, fmt: str) -> Path:
    """`<store>_<z>_<x>[_<y>].<fmt>` beside the store."""
    stem = store.name[:-5] if store.name.endswith(".zarr") else store.name
    return store.parent / f"{stem}_{z}_{x}{'_' + y if y else ''}.{fmt}"


def plot_command(
    store: Path = typer.Argument(..., help="A sweep store (Zarr directory) written by cdyn sweep."),
    x: str = typer.Option(..., "--x", help="Swept field on the x axis (its key, e.g. lam)."),
    y: Optional[str] = typer.Option(None, "--y", help="Second swept field: a phase diagram. "
                                                      "Without it, a line plot with a band over seeds."),
    z: str = typer.Option("t_peak", "--z", help="Outcome to plot (t_peak, kappa_final, rate2, …).",
                          show_default=True),
    fix: Optional[List[str]] = typer.Option(None, "--fix", metavar="FIELD=VALUE",
                                            help="Hold another swept field at one of its values (repeatable)."),
    average: bool = typer.Option(False, "--average", help="Average over the swept fields not on an axis and "
                                                         "not fixed [default: refuse to, name the field]."),
    fmt: str = typer.Option("png", "--format", help=f"Figure format: {', '.join(FORMATS)}.", show_default=True),
    out: Optional[Path] = typer.Option(None, "--out", help="Figure path [default: beside the store, "
                                                           "<store>_<z>_<x>[_<y>].<format>]."),
) -> None:
    """Phase diagram (--x and --y) or line plot (--x only) of a sweep store, with the theory's predictions."""
    from ._sweep_plot import plot_store, save_figure
    from ._sweep_view import open_store

    check_format(fmt)
    if out is not None and out.is_dir():
        raise ValueError(f"out: {str(out)!r} is a directory; give a file name such as {str(out / f'figure.{fmt}')!r}")
    if out is not None and not out.parent.is_dir():
        raise ValueError(f"out: the directory {str(out.parent)!r} does not exist")
    ds = open_store(store)
    sf = plot_store(ds, x, y, z, list(fix or []), average)
    path = save_figure(sf, out if out is not None else default_out(store, x, y, z, fmt), fmt)
    print(f"wrote {path}")
    print(sf.title)
    for line in sf.caption:
        print(f"  {line}")
    for name, fit in sf.fits.items():
        print(f"  slope ({name}): {fit['slope']:.6g}" + (f" ± {fit['se']:.2g}" if name == "measured" else "")
              + f" from {fit['n']} values")
