r"""Matrix gradients $\partial L/\partial W$, term by term.

SymPy can return $0$ for the derivative of a *sum* of traces (sympy issue 26585), so
each additive piece is differentiated on its own and a piece that depends on $W$ but
differentiates to $0$ is an error, not a silent zero. Symmetric data matrices
($\Sigma_z, \Sigma_A, \Sigma_B$) have their transposes folded so that
$\tfrac12 W\Sigma + \tfrac12 W\Sigma^\top$ collapses to $W\Sigma$.
"""

from __future__ import annotations

import sympy as sp
from sympy import MatrixSymbol, Transpose

from . import _symbols as S


def fold_symmetric(expr: sp.Expr) -> sp.Expr:
    """Replace $S^\\top$ by $S$ for the symmetric data matrices, then collect."""
    return expr.xreplace({Transpose(s): s for s in S.SYMMETRIC}).doit()


def _pieces(expr: sp.Expr) -> tuple[sp.Expr, ...]:
    expr = sp.expand(expr)
    return expr.args if isinstance(expr, sp.Add) else (expr,)


def matrix_gradient(expr: sp.Expr, wrt: MatrixSymbol) -> sp.Expr:
    """$\\partial\\,\\mathrm{expr} / \\partial\\,\\mathrm{wrt}$ as a matrix expression of wrt's shape."""
    total: list[sp.Expr] = []
    for piece in _pieces(expr):
        if not piece.has(wrt):
            continue
        g = fold_symmetric(piece.diff(wrt))
        if g == 0 or isinstance(g, sp.ZeroMatrix):
            raise ArithmeticError(f"SymPy differentiated {piece} w.r.t. {wrt} to 0")
        total.append(g)
    if not total:
        return sp.ZeroMatrix(*wrt.shape)
    return fold_symmetric(sp.MatAdd(*total)) if len(total) > 1 else total[0]
