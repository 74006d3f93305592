r"""Run claims on the Dask engine (`cdyn._cluster`): one task per claim, results as a serial run gives them.

A claim's run is a pure function of (claim, examples, seed): `run_claim` starts from
Hypothesis's default settings with an empty pool of local constants (`claims._isolation`)
and pins BLAS to one thread, so a worker that ran claim X before claim Y gives Y the same
result as a fresh process. The results are put back in the order of the claims asked for,
so `results.json` is byte-identical to a serial run with the same seed (the tests check it).

**What a worker needs.** Each task first loads the driver's plugin files and the installed
entry points (`cdyn._cluster.run_pinned`). A claim is then sent by id when the worker can
rebuild it (built-in, from a plugin file, from an entry point); the worker checks that its
claim under that id has the same title and statement. A claim registered directly in Python
(a notebook calling `claims.register`) is sent pickled (cloudpickle); loss terms registered
directly (`theory.register_term`, SymPy expressions) are sent with every task and registered
on the worker when it lacks them. Whatever cannot be pickled is refused before any work,
naming the claim: a claim never runs on a worker without what it was registered with.

**Progress.** Workers publish `(claim id, checks, phase)` on a Dask event topic (at most
ten a second per claim); the driver passes them to the same `progress` callback the serial
engine calls, and `done(result)` as each claim finishes.
"""

from __future__ import annotations

import threading
import time
import uuid
import warnings
from typing import Any, Callable, Sequence

from ._claim import Claim
from ._engine import ClaimResult, Progress, run_claim

#: Result fields a worker sends back (the claim itself stays on the driver).
_FIELDS = ("result", "examples", "worst_margin", "seconds", "worst_instance", "worst_details", "counterexample",
           "error", "details", "summary", "found_by", "checks")
#: Packages whose versions must match between driver and workers: they decide the examples and the numbers.
_VERSIONED = ("contrastive-dynamics", "hypothesis", "numpy", "scipy", "sympy")


class Unshippable(ValueError):
    """A claim or term of this process cannot be sent to the workers (the message names it)."""


def _is_builtin(claim: Claim) -> bool:
    return getattr(claim.check, "__module__", "").startswith("cdyn.claims.")


def claim_reference(claim: Claim) -> tuple:
    """How a worker gets `claim`: `("id", id, title, statement)` or `("pickled", bytes)`."""
    from ._registry import claim_origin

    origin = claim_origin(claim.id)
    if _is_builtin(claim) or (origin is not None and origin.get("kind") in ("file", "entry_point")):
        return ("id", claim.id, claim.title, claim.statement)
    import cloudpickle

    try:
        return ("pickled", cloudpickle.dumps(claim))
    except Exception as err:  # noqa: BLE001 -- any pickling failure is the same refusal
        raise Unshippable(
            f"claim {claim.id!r} was registered in this process (not by a plugin file or entry point) and cannot be "
            f"sent to the Dask workers ({type(err).__name__}: {err}); register it from a plugin file "
            f"(claims.load_plugin / cdyn --plugin) or run without a client") from None


def shipped_terms() -> list[Any]:
    """The loss terms registered in this process outside any plugin (built-ins included), to re-register on workers."""
    import cloudpickle

    from cdyn import theory

    from ._plugins import term_origin

    terms = [theory.get_term(n) for n in theory.available_terms() if term_origin(n) is None]
    for t in terms:
        try:
            cloudpickle.dumps(t)
        except Exception as err:  # noqa: BLE001
            raise Unshippable(f"term {t.name!r}: cannot be sent to the Dask workers ({type(err).__name__}: {err})"
                              ) from None
    return terms


def _sync_terms(terms: Sequence[Any]) -> None:
    """Make this worker's terms equal to the driver's (re-deriving only those that differ)."""
    from cdyn import theory

    have = set(theory.available_terms())
    for t in terms:
        if t.name not in have or theory.get_term(t.name) != t:
            theory.register_term(t.name, t.expr, t.weight, per_sample=t.per_sample, description=t.description,
                                 replace=True)


def _resolve(ref: tuple) -> Claim:
    if ref[0] == "pickled":
        import cloudpickle

        return cloudpickle.loads(ref[1])
    from ._registry import get_claim, is_registered

    _, cid, title, statement = ref
    if not is_registered(cid):
        raise ValueError(f"claim {cid!r}: not registered on the Dask worker (is its plugin file readable there?)")
    claim = get_claim(cid)
    if (claim.title, claim.statement) != (title, statement):
        raise ValueError(f"claim {cid!r}: the Dask worker has a different claim under this id "
                         "(another version of cdyn or of the plugin file)")
    return claim


def _publisher(topic: str | None) -> Progress | None:
    if topic is None:
        return None
    from distributed import get_worker

    worker, last = get_worker(), [0.0]

    def progress(claim: Claim, calls: int, phase: str) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.1:  # a few events a second are enough for a bar
            last[0] = now
            worker.log_event(topic, (claim.id, calls, phase))
    return progress


def _run_on_worker(ref: tuple, terms: Sequence[Any], examples: int | None, seed: int,
                   topic: str | None) -> dict[str, Any]:
    from hypothesis.errors import HypothesisDeprecationWarning

    _sync_terms(terms)
    with warnings.catch_warnings():
        # The worker's own threads (heartbeats, comms) touch the global `random` while a strategy
        # draws, which Hypothesis takes for a strategy using `random`; no strategy here does (the
        # serial run gives no such warning) and Hypothesis draws from its own seeded PRNG.
        warnings.filterwarnings("ignore", message="Do not use the `random` module", category=HypothesisDeprecationWarning)
        r = run_claim(_resolve(ref), examples=examples, seed=seed, progress=_publisher(topic))
    return {f: getattr(r, f) for f in _FIELDS}


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def check_worker_versions(client: Any) -> None:
    """Refuse workers whose package versions differ from this process's (their results would differ)."""
    mine = _versions()
    theirs = client.run(_versions)
    if not theirs:
        raise ValueError("scheduler: the Dask cluster has no workers")
    for addr, v in sorted(theirs.items()):
        for name in _VERSIONED:
            if v.get(name) != mine[name]:
                raise ValueError(f"scheduler: worker {addr} has {name} {v.get(name)}, this process {mine[name]}; "
                                 "results would differ from a serial run")


def run_claims_distributed(claims: Sequence[Claim], client: Any, *, examples: int | None = None, seed: int = 0,
                           progress: Progress | None = None,
                           done: Callable[[ClaimResult], None] | None = None) -> list[ClaimResult]:
    """Run each claim as one task on `client`'s workers; return the results in the order of `claims`.

    `progress(claim, checks, phase)` is called as workers report; `done(result)` as each claim
    finishes (both from this process; never for a claim after its `done`).
    """
    from distributed import as_completed

    from cdyn._cluster import plugin_paths, run_pinned

    from ._registry import claim_origin

    claims = list(claims)
    refs = [claim_reference(c) for c in claims]  # refuse before any work
    terms, plugins = shipped_terms(), plugin_paths()
    check_worker_versions(client)
    topic = f"cdyn-claims-{uuid.uuid4().hex}" if progress is not None else None
    by_id = {c.id: c for c in claims}
    lock, finished = threading.Lock(), set()

    def on_event(event: Any) -> None:
        _, (cid, calls, phase) = event
        with lock:
            if cid not in finished and cid in by_id and progress is not None:
                progress(by_id[cid], calls, phase)

    if topic is not None:
        client.subscribe_topic(topic, on_event)
    futures = [client.submit(run_pinned, plugins, _run_on_worker, ref, terms, examples, seed, topic,
                             key=f"claim-{c.id}-{uuid.uuid4().hex[:8]}", pure=False)
               for c, ref in zip(claims, refs)]
    where = {f.key: i for i, f in enumerate(futures)}
    results: list[ClaimResult | None] = [None] * len(claims)
    try:
        for fut in as_completed(futures):
            i = where[fut.key]
            r = ClaimResult(claims[i], **fut.result())
            if r.counterexample is not None:
                # Where *this* process's claim came from: a worker may hold a plugin's claim under the id.
                r.counterexample["plugin"] = claim_origin(claims[i].id)
            with lock:
                finished.add(claims[i].id)
                results[i] = r
                if done is not None:
                    done(r)
    finally:
        client.cancel([f for f in futures if not f.done()])
        if topic is not None:
            client.unsubscribe_topic(topic)
    return [r for r in results if r is not None]
