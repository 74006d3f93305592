"""Shared CLI plumbing: problem from config, BLAS thread control, JSON output."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from threadpoolctl import threadpool_limits

from cdyn import numerics

# Multi-threaded BLAS was several times slower than one thread on small matrices here.
SMALL_DIM = 256


@contextmanager
def blas_threads(max_dim: int) -> Iterator[None]:
    """One BLAS thread for small matrices, the library default otherwise."""
    if max_dim <= SMALL_DIM:
        with threadpool_limits(limits=1):
            yield
    else:
        yield


def problem_from_config(cfg: dict[str, dict[str, Any]]) -> numerics.Problem:
    p = cfg["problem"]
    return numerics.random_problem(
        p["spectrum_A"], p["spectrum_B"], d_A=p["d_A"], d_B=p["d_B"], m=p["m"], noise_A=p["noise_A"],
        noise_B=p["noise_B"], lam=p["lam"], mu=p["mu"], shared_right=p["shared_right"], seed=p["seed"]
    ).replace(params=dict(p.get("params") or {}))


def jsonable(x: Any, *, nonfinite_as_str: bool = True) -> Any:
    """NumPy arrays/scalars to Python ones, recursively; inf/nan as strings unless told not to."""
    if isinstance(x, dict):
        return {str(k): jsonable(v, nonfinite_as_str=nonfinite_as_str) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v, nonfinite_as_str=nonfinite_as_str) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist(), nonfinite_as_str=nonfinite_as_str)
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and nonfinite_as_str and not np.isfinite(x):
        return str(x)
    return x


def write_json(path: Path, data: dict) -> None:
    """Deterministic JSON (sorted keys; inf/nan as strings)."""
    path.write_text(json.dumps(jsonable(data), indent=2, sort_keys=True) + "\n", encoding="utf-8")
