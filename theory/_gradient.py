r"""Matrix gradients $\partial L/\partial W$ of a term.

Derived by `theory._calculus` (our own differential calculus on the chain normal form),
not by SymPy's matrix derivative, which returns $0$ for sums of traces (sympy issue
26585) and fails on powers and sums inside traces. Symmetric data matrices
($\Sigma_z, \Sigma_A, \Sigma_B$) have their transposes folded, so
$\tfrac12 W\Sigma + \tfrac12 W\Sigma^\top$ collapses to $W\Sigma$.
"""

from __future__ import annotations

import sympy as sp
from sympy import MatrixSymbol, Transpose

from . import _symbols as S
from ._calculus import gradient


def fold_symmetric(expr: sp.Expr) -> sp.Expr:
    """Replace $S^\\top$ by $S$ for the symmetric data matrices, then collect."""
    return expr.xreplace({Transpose(s): s for s in S.SYMMETRIC}).doit()


def matrix_gradient(expr: sp.Expr, wrt: MatrixSymbol) -> sp.Expr:
    """$\\partial\\,\\mathrm{expr} / \\partial\\,\\mathrm{wrt}$ as a matrix expression of wrt's shape."""
    return gradient(expr, wrt)
