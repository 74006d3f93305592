r"""Entry-wise expansion in explicit small dimensions: the independent oracle for `theory`.

A matrix expression is checked by replacing every `MatrixSymbol` with an explicit
matrix of scalar entries (symmetric where the symbol is known to be symmetric) and
expanding. This is how derived gradients, moments and $\dot Q = 0$ are verified
without trusting SymPy's matrix calculus.
"""

from __future__ import annotations

from typing import Mapping

import sympy as sp
from sympy import MatrixSymbol

from . import _symbols as S


def entries(sym: MatrixSymbol, rows: int, cols: int) -> sp.Matrix:
    """Explicit matrix of entry symbols `name_i_j` (symmetric for Σ's)."""
    base = sym.name.replace("\\", "").replace("{", "").replace("}", "")
    if sym in S.SYMMETRIC:
        return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{base}_{min(i, j)}_{max(i, j)}"))
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{base}_{i}_{j}"))


def explicit_substitution(expr: sp.Expr, dims: Mapping[sp.Symbol, int]) -> dict:
    """`{MatrixSymbol: explicit Matrix}` for every matrix symbol in `expr`."""
    out = {}
    for sym in expr.atoms(MatrixSymbol):
        rows, cols = (int(sp.sympify(s, strict=True).xreplace(dict(dims))) for s in sym.shape)
        out[sym] = entries(sym, rows, cols)
    return out


def explicit(expr: sp.Expr, dims: Mapping[sp.Symbol, int]) -> sp.Expr | sp.Matrix:
    """`expr` with every matrix symbol replaced by explicit entries, fully expanded."""
    sub = explicit_substitution(expr, dims)
    out = expr.xreplace(dict(dims)).xreplace({
        MatrixSymbol(k.name, *(sp.sympify(s, strict=True).xreplace(dict(dims)) for s in k.shape)): v for k, v in sub.items()
    })
    out = out.doit()
    if isinstance(out, sp.MatrixExpr) and not isinstance(out, sp.MatrixBase):
        out = out.as_explicit()  # e.g. a ZeroMatrix that SymPy already simplified to
    if isinstance(out, sp.MatrixBase):
        if out.shape == (1, 1):
            return sp.expand(out[0, 0])
        return out.applyfunc(sp.expand)
    return sp.expand(out)
