"""Input checks that name the offending field (no tracebacks from inside NumPy)."""

from __future__ import annotations

import numbers

import numpy as np


def as_matrix(name: str, value: object, rows: int | None = None, cols: int | None = None) -> np.ndarray:
    """A finite float64 2-D array, with the expected shape if given."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name}: expected a 2-D numeric array, got {type(value).__name__}")
    try:
        raw = np.asarray(value)
        if raw.dtype.kind == "c" or raw.dtype == object and any(isinstance(v, complex) for v in raw.ravel()):
            raise TypeError(f"{name}: complex entries are not accepted (the model is real); pass the real part "
                            "explicitly if that is what you mean")
        arr = np.array(raw, dtype=np.float64)
    except TypeError as err:
        if str(err).startswith(name):
            raise
        raise TypeError(f"{name}: expected a 2-D numeric array, got {type(value).__name__}") from None
    except ValueError:
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
    r"""A symmetric positive semi-definite size×size matrix.

    Both tolerances are relative to the matrix's own scale $s = \max|a_{ij}|$ (an absolute one
    would pass $\mathrm{diag}(10^{-12}, -10^{-13})$): asymmetry up to $10^{-12}s$, and eigenvalues
    down to $-10\,n\,\varepsilon\,s$, the backward error of `eigvalsh`."""
    arr = as_matrix(name, value, size, size)
    scale = float(np.abs(arr).max()) if arr.size else 0.0
    if np.abs(arr - arr.T).max(initial=0.0) > 1e-12 * scale:
        raise ValueError(f"{name}: must be symmetric")
    low = float(np.linalg.eigvalsh((arr + arr.T) / 2).min()) if arr.size else 0.0
    if low < -10 * size * np.finfo(float).eps * scale:
        raise ValueError(f"{name}: must be positive semi-definite (smallest eigenvalue {low:.3g}, "
                         f"largest entry {scale:.3g})")
    return (arr + arr.T) / 2


def log10_size(X: np.ndarray) -> float:
    r"""An upper bound on $\log_{10}\|X\|_F$ that cannot overflow ($-\infty$ for a zero matrix)."""
    top = float(np.abs(X).max()) if X.size else 0.0
    return float(np.log10(top) + 0.5 * np.log10(X.size)) if top > 0 else float("-inf")


#: Moments beyond 10^300 leave no room for the products the flow forms from them.
MAX_LOG10_MOMENT = 300.0
