"""Make a Hypothesis run depend on its seed only, not on what the process imported before.

Hypothesis (≥ 6.131) sometimes draws a numeric *constant* instead of a random value, and
the pool of constants includes every int/float literal of the "local" modules in
`sys.modules` (`providers._get_local_constants`), cached per constraint set in the global
`providers.CONSTANTS_CACHE`. Whether the local pool is empty changes how many random
numbers a draw consumes, and its contents change the values, so the same seed gave
different examples under pytest (test modules imported), under `cdyn verify`, and after
any import between two runs. Hypothesis has no setting to turn this off (6.170), so for
the duration of a run we swap in an empty local pool and a fresh cache, and restore both
after. The global constants (powers of two, 0.5, 1.5, …) stay: they are fixed by the
installed Hypothesis version, which every counterexample records.

If the internals move, the context manager does nothing (and the determinism tests fail,
which is how a Hypothesis upgrade that breaks this would be noticed).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

try:  # private API, checked against hypothesis 6.170.x
    from hypothesis.internal.conjecture import providers as _providers
    from hypothesis.internal.cache import LRUCache as _LRUCache

    _SUPPORTED = all(hasattr(_providers, n) for n in ("_get_local_constants", "CONSTANTS_CACHE", "Constants"))
except ImportError:  # pragma: no cover - depends on the installed version
    _providers, _LRUCache, _SUPPORTED = None, None, False


def supported() -> bool:
    """True when the installed Hypothesis has the internals `isolated_constants` swaps."""
    return _SUPPORTED


def _empty_constants() -> object:
    from hypothesis.internal.conjecture.providers import Constants
    from hypothesis.internal.floats import float_to_int
    from sortedcontainers import SortedSet

    return Constants(integers=SortedSet(), floats=SortedSet(key=float_to_int), bytes=SortedSet(),
                     strings=SortedSet())


@contextmanager
def isolated_constants() -> Iterator[None]:
    """No local-module constants and a private constants cache for the duration of the block."""
    if not _SUPPORTED:
        yield
        return
    empty = _empty_constants()
    old_get, old_cache = _providers._get_local_constants, _providers.CONSTANTS_CACHE
    _providers._get_local_constants = lambda: empty
    _providers.CONSTANTS_CACHE = _LRUCache(old_cache.max_size if hasattr(old_cache, "max_size") else 1024)
    try:
        yield
    finally:
        _providers._get_local_constants, _providers.CONSTANTS_CACHE = old_get, old_cache
