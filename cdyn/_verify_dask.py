"""`cdyn verify --workers N` / `--scheduler ADDRESS`: the claims on the Dask engine, with the serial run's bars.

The embedded cluster forks its workers from this process after the closed forms are derived
(`derive_here`), so no worker repeats the import or the SymPy work. The engine arguments are
checked before any work (`check_engine`): a bad count or address
and a scheduler that refuses the connection are one `error:` line and exit 2. The claims
then run one task per claim (`claims._distributed`); each claim's bar follows the checks its
worker reports, and one more bar counts the claims done against the claims asked for.
"""

from __future__ import annotations

import socket
import warnings
from typing import Any
from urllib.parse import urlsplit

from cdyn import claims as claims_pkg

from ._cluster import check_engine_args, dask_client

#: Seconds to wait for a remote scheduler before giving up (a refused port fails at once).
CONNECT_TIMEOUT = 10.0
#: Worker timers for long pure-Python tasks. Each wake-up of a worker's event loop takes the GIL
#: from the task thread; on a loaded machine every hand-off waits for a core. With the defaults
#: (a 20 ms tick, a 10 ms profiler, 100 ms / 500 ms monitors) a claim ran 1.5-2x slower on a
#: worker than in a plain process (C9-false, 10 examples, load ~15 on 2 cores: 22.7 and 22.2 s
#: against 13.8 and 11.3 s); with these it ran in 11.2 and 15.0 s. The embedded cluster only:
#: a remote cluster's workers keep their own configuration. Timers only: no result depends on them.
QUIET_WORKERS = {"distributed.admin.tick.interval": "1s", "distributed.worker.profile.enabled": False,
                 "distributed.worker.memory.monitor-interval": "2s", "distributed.admin.system-monitor.interval": "2s"}


def check_engine(scheduler: str | None, workers: int | None) -> None:
    """Refuse bad engine arguments (ValueError naming the field); probe a tcp scheduler's port."""
    check_engine_args(scheduler, workers)
    if scheduler is None:
        return
    url = urlsplit(scheduler if "://" in scheduler else f"tcp://{scheduler}")
    try:
        host, port = url.hostname, url.port
    except ValueError as err:  # a port that is not a number
        raise ValueError(f"scheduler: bad address {scheduler!r}: {err}") from None
    if url.scheme != "tcp":
        return  # tls://, ucx://, ...: the Dask client itself says what is wrong
    if not host or port is None:
        raise ValueError(f"scheduler: expected an address such as tcp://127.0.0.1:8786, got {scheduler!r}")
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as err:
        raise ValueError(f"scheduler: cannot connect to {scheduler}: {err.strerror or err}") from None


def derive_here() -> None:
    """Derive the closed forms once in this process, before the embedded cluster forks its workers.

    Spawned workers each import the toolkit and redo the same SymPy `dsolve` / `solve` and
    `lambdify` work: measured on the loaded 2-core machine, 19-21 s of import and 32-35 s of
    derivation per worker (two side by side; 5.8 s and 6.8 s in this process), and 18 s to start
    the cluster; workers forked after this call took 0.0 s for both and the cluster 0.2 s. The
    driver needs these results anyway (the report's figures and findings), the serial run pays
    them once too, and a forked worker holds the very objects this process derived, so nothing
    downstream can differ (the default run's results.json was byte-identical). BLAS is pinned
    to one thread per task (`run_pinned`, `run_claim`), as in the serial run.
    """
    from cdyn.numerics import _closed, _decoupled

    for derive in (_closed._logistic, _closed._positive_only, _closed._kappa_law, _closed._peak_fns,
                   _closed._capacity, _closed._split_fns, _decoupled._mode_params, _decoupled.mode_rho_fn):
        derive()


def run_on_engine(chosen: list[claims_pkg.Claim], *, examples: int | None, seed: int, scheduler: str | None,
                  workers: int | None, bar: Any, tasks: dict[str, Any], progress: Any) -> list[claims_pkg.ClaimResult]:
    """Run `chosen` on the engine; `bar`/`tasks` are the serial run's rich bars, `progress` its callback."""
    from ._cluster import default_workers

    where = scheduler if scheduler is not None else f"{workers or default_workers()} local Dask workers"
    overall = bar.add_task(f"claims on {where}"[:34], total=len(chosen))
    import dask
    import distributed  # noqa: F401 -- its config defaults must be loaded before we override a few

    config = dict(QUIET_WORKERS)
    if scheduler is None:
        derive_here()
        config["distributed.worker.multiprocessing-method"] = "fork"
    with warnings.catch_warnings(), dask.config.set(config):
        # The embedded scheduler's HTTP server moves off a busy default port with a UserWarning
        # that asks the user nothing (the dashboard is off).
        warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
        with dask_client(scheduler, workers, timeout=CONNECT_TIMEOUT) as client:
            from cdyn.claims._distributed import run_claims_distributed

            def done(r: claims_pkg.ClaimResult) -> None:
                task = tasks[r.claim.id]
                bar.update(task, completed=bar.tasks[task].total, description=f"{r.claim.id}: {r.result}")
                bar.advance(overall)

            return run_claims_distributed(chosen, client, examples=examples, seed=seed, progress=progress,
                                          done=done)
