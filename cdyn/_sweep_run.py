r"""The sweep engine: cells in batches as Dask tasks (or serially), each batch written when it returns.

A task runs `run_batch(config_text, cells, limits)` on a worker through `_cluster.run_pinned`
(plugins loaded, BLAS at one thread), so the serial path (`workers = 0`, in this process) and
every cluster run the very same function on the very same inputs: same numbers. A cell's
config comes from the config text and its flat index only, never from the order cells run in.

Batching: a task carries $b$ consecutive cells, $b = \min(32, \lceil n/(4w)\rceil)$ for $n$ cells
and $w$ workers unless `[sweep] batch` says otherwise, so scheduling (about 20 ms a task, measured
on the shared 2-core machine) and the driver's write of a batch (0.1-0.2 s for the 17 variables)
stay small next to the work, while every worker still gets about four tasks to balance the load.
A killed sweep loses at most the batches in flight.

Start-up: the embedded cluster forks its workers from this process (as `cdyn verify` does) after
this process has run the first cell itself, so each worker starts with the imports, the plugins
and the compiled flows of that cell instead of importing the toolkit and deriving and compiling
them again (spawned workers: about 20 s each on the loaded machine before their first cell).
That cell is a cell of the sweep like any other (the same `run_batch`, written when it returns).
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from cdyn import numerics

from ._cluster import dask_client, run_pinned
from ._sweep_cell import check_cell, error_outcome, run_cell
from ._sweep_spec import SweepSpec, parse_sweep, representative_cells

#: Statuses counted as failed by the progress bar (a diverged run is an outcome, not a failure).
FAILED = ("error", "failed")


@lru_cache(maxsize=4)
def _spec(text: str) -> SweepSpec:
    return parse_sweep(text)


def run_batch(text: str, cells: list[int], limits: tuple[float | None, float | None]) -> list[tuple[int, dict[str, Any]]]:
    """Run cells of the sweep `text` (on a worker, or here when serial); a cell that raises is an outcome."""
    spec = _spec(text)
    out = []
    with numerics.budget(limits[0], limits[1], limits[1]):
        for flat in cells:
            t0 = time.perf_counter()
            try:
                res = run_cell(spec.cell_config(flat), spec.init, spec.train)
            except Exception as err:  # noqa: BLE001 - recorded with its reason; the sweep goes on
                res = error_outcome(err, time.perf_counter() - t0)
            out.append((flat, res))
    return out


class _HeartbeatAtClose(logging.Filter):
    """Drops a worker's "Failed to communicate with scheduler during heartbeat" traceback: when the
    embedded cluster closes, a forked worker's heartbeat can race the scheduler's shutdown (seen in
    1 of 3 runs). A worker that really loses its scheduler still fails its tasks, which the driver reports."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "during heartbeat" not in record.getMessage()


@contextmanager
def _quiet_teardown(embedded: bool) -> Iterator[None]:
    """The filter on `distributed.worker`'s log while the embedded cluster lives (forked workers inherit it)."""
    log, filt = logging.getLogger("distributed.worker"), _HeartbeatAtClose()
    if embedded:
        log.addFilter(filt)
    try:
        yield
    finally:
        log.removeFilter(filt)


@contextmanager
def sweep_client(scheduler: str | None, workers: int | None, fork: bool = True) -> Iterator[Any]:
    """`dask_client` as the sweep uses it: an embedded cluster gets `cdyn verify`'s quiet worker timers
    and, with `fork`, workers forked from this process (a remote cluster keeps its own configuration)."""
    import dask
    import distributed  # noqa: F401 -- its config defaults must be loaded before we override a few

    from ._verify_dask import QUIET_WORKERS

    config: dict[str, Any] = {}
    if scheduler is None:
        config = dict(QUIET_WORKERS) | ({"distributed.worker.multiprocessing-method": "fork"} if fork else {})
    with dask.config.set(config), _quiet_teardown(scheduler is None), dask_client(scheduler, workers) as client:
        yield client


def _warm(plugins: list[str]) -> None:
    """Load the cell code and the plugins in a worker process."""
    run_pinned(plugins, _spec.cache_info)


def precheck(spec: SweepSpec, limits: tuple[float | None, float | None]) -> None:
    """Refuse a bad sweep before any work: each value of each field (every cell when there are few)
    goes through the config validator and the checks of `simulate`/`train` (instance, init, terms, budgets)."""
    with numerics.budget(limits[0], limits[1], limits[1]):
        for flat in representative_cells(spec):
            cfg = spec.cell_config(flat)
            try:
                check_cell(cfg, spec.init, spec.train)
            except (ValueError, TypeError) as err:
                raise type(err)(f"[sweep] cell {spec.describe(flat)}: {err}") from None


@dataclass
class Tally:
    """What a run did, for the progress bar and the final report."""

    total: int
    done: int = 0
    failed: int = 0
    lost: int = 0
    work: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)

    def add(self, results: list[tuple[int, dict[str, Any]]]) -> None:
        for _, r in results:
            self.done += 1
            self.failed += r["status"] in FAILED
            self.work += r["wall"]
            self.statuses[r["status"]] = self.statuses.get(r["status"], 0) + 1


def batch_size(spec: SweepSpec, n: int, workers: int) -> int:
    if spec.batch:
        return spec.batch
    return max(1, min(32, math.ceil(n / (4 * max(1, workers)))))


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total} done"), TextColumn("{task.fields[failed]} failed"),
                    TextColumn("{task.fields[left]} remaining"),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=True)


def execute(spec: SweepSpec, todo: list[int], write: Callable[[list[tuple[int, dict[str, Any]]]], None], *,
            plugins: list[str], limits: tuple[float | None, float | None], workers: int | None,
            scheduler: str | None, console: Console, fork: bool = True) -> dict[str, Any]:
    """Run the cells `todo` serially (`workers == 0`) or on Dask; `write` gets each finished batch.

    `fork=False` spawns the embedded cluster's workers instead (fresh interpreters; for comparison)."""
    tally = Tally(len(todo))
    t0 = time.perf_counter()
    bar = _progress(console)
    task = bar.add_task("sweep" if workers == 0 else "starting Dask", total=len(todo), failed=0, left=len(todo))

    def done(results: list[tuple[int, dict[str, Any]]]) -> None:
        write(results)
        tally.add(results)
        bar.update(task, completed=tally.done, failed=tally.failed + tally.lost,
                   left=tally.total - tally.done - tally.lost)

    info: dict[str, Any] = {}
    # Cells run here before the embedded cluster forks (0 for serial and remote runs), and their work.
    warm = 1 if workers != 0 and scheduler is None and fork and len(todo) > 1 else 0
    warm_work = 0.0
    with bar:
        if workers == 0:
            b = batch_size(spec, len(todo), 1)
            info |= {"engine": "serial", "workers": 1, "batch": b, "startup": 0.0}
            t1 = time.perf_counter()
            for i in range(0, len(todo), b):
                done(run_pinned(plugins, run_batch, spec.text, todo[i:i + b], limits))
        else:
            if warm:
                # The first cell here (its result kept), then the workers forked from this process.
                first = run_pinned(plugins, run_batch, spec.text, todo[:warm], limits)
                warm_work = sum(r["wall"] for _, r in first)
                done(first)
            rest = todo[warm:]
            with sweep_client(scheduler, workers, fork) as client:
                from distributed import as_completed

                # Imports and plugins on every worker first, so the start-up is not billed to the first cells.
                client.run(_warm, plugins)
                n_workers = len(client.scheduler_info().get("workers", {})) or (workers or 1)
                b = batch_size(spec, len(rest), n_workers)
                where = f"scheduler {scheduler}" if scheduler else \
                    f"local cluster, {'forked' if fork else 'spawned'} workers"
                info |= {"engine": f"dask ({where})",
                         "workers": n_workers, "batch": b, "startup": time.perf_counter() - t0}
                t1 = time.perf_counter()
                bar.update(task, description=f"sweep on {n_workers} worker{'s' * (n_workers > 1)}")
                batches = {client.submit(run_pinned, plugins, run_batch, spec.text, rest[i:i + b], limits,
                                         pure=False): rest[i:i + b] for i in range(0, len(rest), b)}
                for fut in as_completed(batches):
                    try:
                        results = fut.result()
                    except Exception as err:  # noqa: BLE001 - a lost worker: those cells stay to do
                        tally.lost += len(batches[fut])
                        info.setdefault("lost_reason", f"{type(err).__name__}: {' '.join(str(err).split())}"[:300])
                        continue
                    done(results)
    compute = time.perf_counter() - t1
    # Rates over the cells run after the start-up (the first cell, run here before the fork, is in `startup`).
    n_after, work_after = tally.done - min(warm, tally.done), tally.work - warm_work
    return info | {"cells": tally.done, "failed": tally.failed, "lost": tally.lost, "statuses": tally.statuses,
                   "seconds": time.perf_counter() - t0, "compute_seconds": compute, "cell_seconds": tally.work,
                   "cells_per_second": n_after / compute if compute > 0 else float("nan"),
                   # time the workers were busy with something other than a cell, per cell
                   "overhead_per_cell": (compute * info["workers"] - work_after) / max(n_after, 1)}


def store_path_default(config: Path) -> Path:
    return Path(f"{config.stem}.zarr")
