"""Shared CLI plumbing: problem from config, BLAS thread control, JSON output."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from threadpoolctl import threadpool_limits

import numerics

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
        noise_B=p["noise_B"], lam=p["lam"], mu=p["mu"], shared_right=p["shared_right"], seed=p["seed"])


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if np.isfinite(v) else str(v)
    if isinstance(x, np.integer):
        return int(x)
    return x


def write_json(path: Path, data: dict) -> None:
    """Deterministic JSON (sorted keys; inf/nan as strings)."""
    path.write_text(json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n", encoding="utf-8")
