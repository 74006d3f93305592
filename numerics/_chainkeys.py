"""Keys of matrix chains for the code generator (`_compile`): transposes, one representative of
a chain and its transpose, and the sub-chains several chains share.

Pure functions of the SymPy factors, called for every sub-chain of every compile, so they are
cached across compiles: a claims run compiles the same chains for about a hundred shapes, and
none of these reads a shape.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp
from sympy import MatMul, MatrixSymbol, Transpose


def _t(f: sp.Expr, symmetric: frozenset) -> sp.Expr:
    if isinstance(f, Transpose):
        return f.arg
    return f if f in symmetric else Transpose(f)


def _fkey(f: sp.Expr) -> tuple:
    if isinstance(f, MatrixSymbol):
        return (0, f.name)
    if isinstance(f, Transpose) and isinstance(f.arg, MatrixSymbol):
        return (1, f.arg.name)
    return (2, hash(f))  # consistent within a process, which is all a representative needs


@lru_cache(maxsize=1 << 16)
def _tkey(mats: tuple, symmetric: frozenset) -> tuple:
    r"""The factors of the transposed chain $(F_1\cdots F_n)^\top = F_n^\top\cdots F_1^\top$."""
    return tuple(_t(f, symmetric) for f in reversed(mats))


@lru_cache(maxsize=1 << 16)
def _canon(mats: tuple, symmetric: frozenset) -> tuple:
    """One representative of a chain and its transpose (cheap keys: `str` of SymPy is slow)."""
    return min(mats, _tkey(mats, symmetric), key=lambda ms: tuple(map(_fkey, ms)))


@lru_cache(maxsize=256)
def _shared_chains(exprs: tuple, symmetric: frozenset) -> dict[tuple, int]:
    """Sub-chains (length >= 2, up to transposition) that occur in several chains of `exprs`,
    with their counts. Read-only."""
    seen: dict[tuple, int] = {}
    for expr in exprs:
        for node in sp.preorder_traversal(expr):
            if isinstance(node, MatMul):
                mats = tuple(node.as_coeff_matrices()[1])
                subs = {_canon(mats[i:j], symmetric) for i in range(len(mats)) for j in range(i + 2, len(mats) + 1)}
                for sub in subs:
                    seen[sub] = seen.get(sub, 0) + 1
    return {k: v for k, v in seen.items() if v > 1}
