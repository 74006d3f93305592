"""Input checks that name the offending field (no tracebacks from inside NumPy)."""

from __future__ import annotations

import numbers

import numpy as np


def as_matrix(name: str, value: object, rows: int | None = None, cols: int | None = None) -> np.ndarray:
    """A finite float64 2-D array, with the expected shape if given."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name}: expected a 2-D numeric array, got {type(value).__name__}")
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a 2-D numeric array, got {type(value).__name__}") from None
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array, got shape {arr.shape}")
    if rows is not None and arr.shape[0] != rows or cols is not None and arr.shape[1] != cols:
        want = f"({rows if rows is not None else '*'}, {cols if cols is not None else '*'})"
        raise ValueError(f"{name}: expected shape {want}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or inf")
    return arr


def as_real(name: str, value: object, *, low: float | None = None, strict: bool = False) -> float:
    """A finite real number, optionally bounded below (strictly or not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name}: must be finite, got {v}")
    if low is not None and (v <= low if strict else v < low):
        raise ValueError(f"{name}: must be {'>' if strict else '>='} {low}, got {v}")
    return v


def as_int(name: str, value: object, *, low: int = 1) -> int:
    """An integer >= low."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    if int(value) < low:
        raise ValueError(f"{name}: must be >= {low}, got {int(value)}")
    return int(value)


def as_psd(name: str, value: object, size: int) -> np.ndarray:
    """A symmetric positive semi-definite size×size matrix."""
    arr = as_matrix(name, value, size, size)
    scale = max(1.0, float(np.abs(arr).max()))
    if not np.allclose(arr, arr.T, atol=1e-12 * scale, rtol=0):
        raise ValueError(f"{name}: must be symmetric")
    if np.linalg.eigvalsh(arr).min() < -1e-10 * scale:
        raise ValueError(f"{name}: must be positive semi-definite")
    return (arr + arr.T) / 2
