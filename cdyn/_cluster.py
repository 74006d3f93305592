"""The scale-out engine: Dask `distributed`, embedded or remote.

`dask_client(scheduler=None, workers=None)` yields a `distributed.Client`:

- with no `scheduler`, an embedded `LocalCluster` of `workers` processes (default: one per
  core), each with **one** thread and BLAS pinned to one thread (several BLAS threads per
  process were several times slower than one on the small matrices of this toolkit);
- with `scheduler="tcp://host:port"`, the existing cluster at that address. Its workers'
  environment is not ours to set, so every task also pins BLAS with `threadpoolctl`
  (`run_pinned`).

Plugins (user terms and claims) are Python files or entry points loaded by the driver; a
worker process must load the same ones before it runs a task, so tasks carry the list
(`plugin_paths`) and `ensure_plugins` loads each one once per worker process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_BLAS_ENV = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                   "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")}
_LOADED_HERE: set[str] = set()


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def check_engine_args(scheduler: str | None, workers: int | None) -> None:
    """Refuse bad engine arguments before any work starts (ValueError naming the field)."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers: must be an integer >= 1, got {workers!r}")
    if workers is not None and workers > 1024:
        raise ValueError(f"workers: {workers} local worker processes is more than this engine starts (max 1024)")
    if scheduler is not None:
        if not isinstance(scheduler, str) or "://" not in scheduler and ":" not in scheduler:
            raise ValueError(f"scheduler: expected an address such as tcp://127.0.0.1:8786, got {scheduler!r}")
        if workers is not None:
            raise ValueError("workers: sizes the embedded cluster only; a remote --scheduler brings its own workers")


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None,
                *, timeout: float = 30.0) -> Iterator[Any]:
    """A `distributed.Client` on an embedded `LocalCluster` or on the scheduler at `scheduler`."""
    check_engine_args(scheduler, workers)
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=timeout)
        except OSError as err:  # includes TimeoutError
            raise ValueError(f"scheduler: cannot connect to {scheduler}: {err}") from None
        with client:
            yield client
        return
    n = workers if workers is not None else default_workers()
    # The env reaches each worker process before NumPy is imported there, which is what
    # BLAS needs. The dashboard (if bokeh is installed) takes a free port: `None` still bound 8787
    # in distributed 2026.8 and warned on every run when that port was taken.
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                      env=dict(_BLAS_ENV), silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def plugin_paths() -> list[str]:
    """The `--plugin` files loaded in this process, as absolute paths, in load order."""
    from cdyn import claims

    return [str(Path(rec["path"]).resolve()) for rec in claims.loaded_plugins() if rec.get("kind") == "file"]


def ensure_plugins(paths: Sequence[str]) -> None:
    """Load the installed entry points and these plugin files in this (worker) process, once each."""
    from cdyn import claims

    if "<entry-points>" not in _LOADED_HERE:
        claims.load_entry_points()
        _LOADED_HERE.add("<entry-points>")
    for path in paths:
        if path not in _LOADED_HERE:
            claims.load_plugin(path)
            _LOADED_HERE.add(path)


def run_pinned(plugins: Sequence[str], fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn(*args, **kwargs)` on a worker: plugins loaded, BLAS at one thread."""
    from threadpoolctl import threadpool_limits

    ensure_plugins(plugins)
    with threadpool_limits(limits=1):
        return fn(*args, **kwargs)
