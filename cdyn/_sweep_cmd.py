"""`cdyn sweep`: run (or resume) a sweep into a Zarr store; `--replay STORE CELL` reruns one cell."""

from __future__ import annotations

import json
import math
import shlex
import sys
from pathlib import Path
from typing import Any, Optional, Tuple

import typer
from rich.console import Console

from cdyn import numerics

from ._cluster import check_engine_args, plugin_paths
from ._config import ConfigError, _read_config
from ._outputs import OutputError
from ._sweep_cell import FLOAT_VARS
from ._sweep_plot_cmd import plot_command
from ._sweep_run import execute, precheck, run_batch, store_path_default
from ._sweep_spec import SweepSpec, parse_sweep
from ._sweep_store import STRING_VARS, StoreWriter, check_matches, create_store, open_store
from .cli import app

sweep_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                        invoke_without_command=True)
app.add_typer(sweep_app, name="sweep")

sweep_app.command("plot")(plot_command)


def _limits(max_memory: str | None, max_steps: float | None) -> tuple[float | None, float | None]:
    return (None if max_memory is None else numerics.parse_bytes(max_memory), max_steps)


def _plugins_json() -> str:
    from cdyn import claims

    return json.dumps(claims.loaded_plugins(), sort_keys=True)


@sweep_app.callback()
def sweep(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file with a [sweep] section (and the "
                                          "[problem], [init], [run], [train] it varies)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Zarr store [default: CONFIG's name with .zarr]. "
                                       "Rerunning the same command resumes it: only cells not done are computed."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Embedded Dask cluster of N single-threaded "
                                          "workers; 0 runs serially in this process [default: [sweep] workers, "
                                          "else one per core]."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of an existing Dask scheduler, "
                                            "e.g. tcp://10.0.0.5:8786 [default: [sweep] scheduler, else none]."),
    force: bool = typer.Option(False, "--force", help="Replace a store made by another config."),
    replay: Optional[Tuple[Path, str]] = typer.Option(
        None, "--replay", metavar="STORE CELL",
        help="Rerun one cell of a store exactly and print its outcomes next to the stored ones. CELL is a flat "
             "index (0 .. cells-1, C order over the store's dimensions) or a selector such as lam=0.5,seed=2 "
             "(every dimension longer than 1; sample=3,seed=0 for random/lhs designs)."),
    max_memory: Optional[str] = typer.Option(None, "--max-memory", help="Memory budget of each cell, e.g. 16G "
                                             "[default: 4G]."),
    max_steps: Optional[float] = typer.Option(None, "--max-steps", help="Budget of each cell's GD/SGD steps "
                                              "[default: 1e7] and flow RHS evaluations [default: 1e6]."),
) -> None:
    """Sweep fields of [problem], [init], [run], [train] over a grid or a random/Latin-hypercube design,
    on Dask, into a Zarr store (one dimension per swept field, plus seed).

    \b
    The config's [sweep] section (the rest of the config is the base every cell starts from):
      design = "grid"        grid | random | lhs
      seeds = 3              repeats: n (seeds 0..n-1) or a list; each sets seed_fields
      seed_fields = ["problem.seed", "init.seed", "train.seed"]
      init = "random"        random | balanced (decoupled aligned init, X0 = scale^2: t_peak_pred)
      train = "none"         none | gd | sgd (the [train] loss): train_gap to the flow
      batch = 0              cells per task (0: automatic)
      [sweep.grid]           "problem.lam" = [0.5, 1.0]  "problem.spectrum_A[3]" = [0.1, 0.4]
      [sweep.ranges]         random/lhs (+ samples = N, seed = S): "init.scale" = {low=1e-6, high=1e-2, log=true}

    \b
    Outcomes per cell: status, reason, t_status, t_peak, kappa_peak, t_peak_pred, kappa_final,
    kappa_limit, eig_ratio, rate1(_pred), rate2(_pred), train_gap, wall; done. A killed sweep rerun
    with the same command computes only the cells not done."""
    if ctx.invoked_subcommand is not None:
        return
    limits = _limits(max_memory, max_steps)
    if replay is not None:
        if config is not None or out is not None or workers is not None or scheduler is not None:
            raise ValueError("replay: --replay runs one cell here from the store's own config; "
                             "drop --config/--out/--workers/--scheduler")
        raise typer.Exit(_replay(replay[0], replay[1], limits))
    if config is None:
        raise ValueError("config: cdyn sweep needs --config FILE with a [sweep] section (or --replay STORE CELL)")
    spec = parse_sweep(_read_config(config), config.name)
    workers = spec.workers if workers is None and scheduler is None else workers
    scheduler = spec.scheduler if scheduler is None and workers is None else scheduler
    if workers == 0 and scheduler is not None:
        raise ValueError("workers: 0 runs serially; a --scheduler brings its own workers")
    check_engine_args(scheduler, None if workers == 0 else workers)
    store = out if out is not None else store_path_default(config)
    _check_out(store)
    precheck(spec, limits)
    _run(spec, store, force, limits, workers, scheduler)


def _check_out(store: Path) -> None:
    if store.exists() and not store.is_dir():
        raise OutputError(f"out: {str(store)!r} exists and is not a directory")
    if store.exists() and any(store.iterdir()) and not (store / "zarr.json").is_file():
        raise OutputError(f"out: {str(store)!r} is a non-empty directory that is not a sweep store")
    if not store.resolve().parent.is_dir():
        raise OutputError(f"out: the directory {str(store.resolve().parent)!r} does not exist")


def _run(spec: SweepSpec, store: Path, force: bool, limits: Any, workers: int | None, scheduler: str | None) -> None:
    console = Console(stderr=True)
    plugins = _plugins_json()
    command = shlex.join(["cdyn", *sys.argv[1:]]) if sys.argv else "cdyn sweep"
    fresh = not (store / "zarr.json").is_file()
    if not fresh and not force:
        check_matches(store, spec, plugins)
    if fresh or force:
        create_store(store, spec, {"plugins": plugins, "created_with": command})
    writer = StoreWriter(store, spec)
    todo = writer.todo()
    if not todo:
        typer.echo(f"{store}: all {spec.n_cells} cells done; nothing to compute")
        return
    run = writer.start_run(command)
    if len(todo) < spec.n_cells:
        typer.echo(f"{store}: resuming, {spec.n_cells - len(todo)} of {spec.n_cells} cells already done")
    info = execute(spec, todo, lambda res: writer.write(res, run), plugins=plugin_paths(), limits=limits,
                   workers=workers, scheduler=scheduler, console=console)
    writer.finish_run(run, info["cells"])
    st = ", ".join(f"{n} {k}" for k, n in sorted(info["statuses"].items()))
    typer.echo(f"{info['cells']} cells in {info['seconds']:.1f}s on {info['engine']}, {info['workers']} worker(s), "
               f"{info['batch']} cells a task: {st}")
    typer.echo(f"{info['cells_per_second']:.2f} cells/s after a {info['startup']:.1f}s start-up; cell work "
               f"{info['cell_seconds']:.1f}s, overhead {1e3 * info['overhead_per_cell']:.0f} ms a cell")
    if info["lost"]:
        typer.echo(f"{info['lost']} cells not computed (a task failed: {info.get('lost_reason')}); "
                   "rerun the same command to compute them")
    typer.echo(f"wrote {store} (dims {dict(zip(spec.dims, spec.shape))})")


def resolve_cell(spec: SweepSpec, ds: Any, cell: str) -> int:
    """A flat index, or `name=value,...` over the store's dimensions (those of length 1 may be left out)."""
    import numpy as np

    text = cell.strip()
    if text.lstrip("-").isdigit():
        flat = int(text)
        if not 0 <= flat < spec.n_cells:
            raise ValueError(f"cell: index {flat} is out of range (the store has {spec.n_cells} cells)")
        return flat
    given: dict[str, str] = {}
    for part in text.split(","):
        name, eq, value = part.partition("=")
        if not eq or not name.strip():
            raise ValueError(f"cell: expected name=value pairs such as {spec.dims[0]}=...,seed=0, got {part!r}")
        given[name.strip()] = value.strip()
    for name in given:
        if name not in spec.dims:
            raise ValueError(f"cell: {name!r} is not a dimension of the store (dimensions: {', '.join(spec.dims)})")
    idx = []
    for name, n in zip(spec.dims, spec.shape):
        coord = ds[name].values
        if name not in given:
            if n > 1:
                raise ValueError(f"cell: give {name}= (one of {', '.join(map(str, coord[:8]))}{'...' if n > 8 else ''})")
            idx.append(0)
            continue
        value = given[name]
        if coord.dtype.kind in "fiu":
            try:
                x = float(value)
            except ValueError:
                raise ValueError(f"cell: {name}={value!r} is not a number") from None
            hits = np.flatnonzero(np.isclose(coord.astype(float), x, rtol=1e-9, atol=0))
        elif coord.dtype.kind == "b":
            hits = np.flatnonzero(coord == (value.lower() == "true"))
        else:
            hits = np.flatnonzero(np.array([str(c) for c in coord]) == value)
        if hits.size != 1:
            raise ValueError(f"cell: {name}={value} matches no value of {name} (values: "
                             f"{', '.join(map(str, coord[:8]))}{'...' if n > 8 else ''})")
        idx.append(int(hits[0]))
    return int(np.ravel_multi_index(idx, spec.shape))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return str(a) == str(b)


def _replay(store: Path, cell: str, limits: Any) -> int:
    from cdyn import claims

    ds = open_store(store)
    stored = json.loads(ds.attrs.get("plugins", "[]"))
    loaded = {o.get("path"): o for o in claims.loaded_plugins() if o.get("kind") == "file"}
    for origin in stored:
        if origin.get("kind") == "file" and origin.get("path") not in loaded:
            path = shlex.quote(str(origin.get("path")))
            raise ConfigError(f"replay: the store was made with plugin {path}; rerun as: "
                              f"cdyn --plugin {path} sweep --replay {shlex.quote(str(store))} {shlex.quote(cell)}")
    spec = parse_sweep(str(ds.attrs["config_toml"]), f"{store} (config_toml)")
    flat = resolve_cell(spec, ds, cell)
    idx = dict(zip(spec.dims, spec.index(flat)))
    [(_, res)] = run_batch(spec.text, [flat], limits)
    typer.echo(f"cell {flat}: {spec.describe(flat)}")
    rec = ds.isel(idx)
    if not bool(rec["done"].values):
        typer.echo("(the store has not computed this cell yet: no stored outcomes to compare)")
    differ = []
    for k in (*STRING_VARS, *FLOAT_VARS):
        old = rec[k].values.item()
        old = float(old) if k in FLOAT_VARS else str(old)
        same = _same(res[k], old) if k != "wall" else True
        if not same and bool(rec["done"].values):
            differ.append(k)
        fmt = (lambda v: f"{v:.17g}") if k in FLOAT_VARS else str
        typer.echo(f"  {k:12s} replayed {fmt(res[k])!s:26.80s} stored {fmt(old)!s:.80s}"
                   + ("" if k == "wall" else ("  same" if same else "  DIFFERENT")))
    for origin in stored:
        now = loaded.get(origin.get("path"))
        if origin.get("kind") == "file" and now and now.get("sha256") != origin.get("sha256"):
            typer.echo(f"note: plugin {origin.get('path')} changed since the sweep (sha256 differs)")
    if not bool(rec["done"].values):
        return 0
    typer.echo("reproduced exactly" if not differ else f"DIFFERENT: {', '.join(differ)}")
    return 0 if not differ else 1
