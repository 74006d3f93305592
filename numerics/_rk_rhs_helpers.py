r"""The helpers a generated right-hand side of the `numba` backend calls (`_rk_numba`), and its type.

`_mm`, `_tr2`, `_logdet` stand in for what numba compiles slowly (`@`: tens of seconds per layout
combination on this machine) or not at all (`einsum`); `_sc`, `_add` for array expressions, which
numba compiles slowly in every generated function; `_put` writes an output block into the flat
derivative. `RHS_SIG` is the signature of every generated `rhs(y, out, consts, shp)`; the DOP853 loop
(`_rk_kernels`) takes such a function as the first-class type `_FN`.

These functions are compiled *into* each generated right-hand side, and numba's disk cache checks
only the generated file: `_rk_numba` puts this file's bytes in the generated module's key, so an
edit here recompiles the right-hand sides (once per machine) instead of leaving the old helpers in.
"""

import numpy as np
from numba import njit, types

F1, F2, F3, I1 = types.float64[::1], types.float64[:, ::1], types.float64[:, :, ::1], types.int64[::1]
RHS_SIG = types.void(F1, F1, F1, I1)
_FN = types.FunctionType(RHS_SIG)


@njit(cache=True)
def _mm(a, b):
    """$ab$: BLAS above 1024 multiply-adds, loops below, where a BLAS call costs more than the work
    (measured from numba: 8×16×8 1.1 µs by loops, 2.6 µs by BLAS; 8×64×8 7.6 against 4.8 µs)."""
    n, k = a.shape
    m = b.shape[1]
    if n * k * m > 1024:
        return np.dot(a, b)
    out = np.zeros((n, m))
    for i in range(n):
        for p in range(k):
            aip = a[i, p]
            for j in range(m):
                out[i, j] += aip * b[p, j]
    return out


@njit(cache=True)
def _sc(c, a):
    r"""$c\,a$ (a loop: numba compiles array expressions slowly, in every generated function)."""
    out = np.empty(a.shape)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[i, j] = c * a[i, j]
    return out


@njit(cache=True)
def _add(a, b):
    out = np.empty(a.shape)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[i, j] = a[i, j] + b[i, j]
    return out


@njit(cache=True)
def _put(out, start, a):
    """Write matrix `a` row-major into `out[start:]`, a row at a time into a slice of `out` (a copy that
    vectorizes: a running index into `out` did not, 0.86 against 0.18 µs for 32×32)."""
    rows, cols = a.shape
    for i in range(rows):
        row = out[start + i * cols:start + (i + 1) * cols]
        for j in range(cols):
            row[j] = a[i, j]


@njit(cache=True)
def _tr2(p, q):
    s = 0.0
    for i in range(p.shape[0]):
        for j in range(p.shape[1]):
            s += p[i, j] * q[j, i]
    return s


@njit(cache=True)
def _logdet(x):
    sign, logabs = np.linalg.slogdet(x)
    return logabs if sign > 0 else np.nan
