r"""Matrix gradients of any smooth scalar built from traces, by our own differential calculus.

SymPy's matrix derivative goes through its array machinery, which fails on matrix powers
and sums inside traces, returns $0$ for `log(Trace(...))` and for sums of traces (sympy
issue 26585), and got the sign of $\partial\,\mathrm{tr}(P^{-1})$ wrong here. So gradients
are derived without it, in three rules.

**Scalars.** Every $W$-dependent *atom* (a trace, a determinant, a $1\times1$ matrix) is
replaced by a dummy $u_k$, leaving an ordinary scalar function $\varphi(u_1, \dots)$ that
SymPy differentiates reliably; the chain rule then gives

$$\nabla_W \varphi = \sum_k \frac{\partial\varphi}{\partial u_k}\,\nabla_W u_k .$$

**Traces.** With the argument in chain normal form $X = \sum_i c_i F_{i1}\cdots F_{in}$
(`theory._chains`) and a constant left factor $K$, the differential of
$\operatorname{tr}(K F_1 \cdots F_n)$ at a factor $F_j$ is rotated to the end:
$\operatorname{tr}(P\,dW)$ gives $\nabla = P^\top$, $\operatorname{tr}(P\,dW^\top)$ gives
$\nabla = P$, and an inverse factor uses $d(Y^{-1}) = -Y^{-1}\,dY\,Y^{-1}$, i.e.
$\operatorname{tr}(P\,dY^{-1}) = -\operatorname{tr}(Y^{-1} P Y^{-1}\, dY)$, recursively.
A coefficient $c_i$ that depends on $W$ (a trace inside a trace) adds
$\operatorname{tr}(K F_{i1}\cdots)\,\nabla c_i$.

**Determinants.** $d\det X = \det X\,\operatorname{tr}(X^{-1}dX)$, so $\log\det$ needs no
special case: $\nabla\log\det X = \nabla_W \operatorname{tr}(K X)|_{K = X^{-1}}$.

Anything else is refused by `check_supported` with the construct named and a way to write
it, before any derivation: never an internal error, never a silent zero.
"""

from __future__ import annotations

import sympy as sp
from sympy import MatAdd, MatMul, MatPow, MatrixExpr, MatrixSymbol, Transpose
from sympy.matrices.expressions.matexpr import MatrixElement

from . import _symbols as S
from ._chains import Chains, build, chains, combine, t_chain

#: Smooth scalar functions the calculus (and the code generator) knows.
FUNCTIONS = (sp.log, sp.exp, sp.sin, sp.cos, sp.tan, sp.sinh, sp.cosh, sp.tanh, sp.atan)
_MATRIX_NODES = (MatrixSymbol, Transpose, MatMul, MatAdd, MatPow, sp.Inverse, sp.Identity, sp.ZeroMatrix)


class UnsupportedTerm(ValueError):
    """A construct the calculus cannot differentiate (the message names it and shows a rewrite)."""


def frobenius_sq(X: MatrixExpr) -> sp.Expr:
    r"""$\|X\|_F^2 = \operatorname{tr}(X X^\top)$."""
    return sp.Trace(X * X.T)


def frobenius(X: MatrixExpr) -> sp.Expr:
    r"""$\|X\|_F = \sqrt{\operatorname{tr}(X X^\top)}$ (smooth away from $X = 0$)."""
    return sp.sqrt(frobenius_sq(X))


def _is_atom(e: sp.Basic) -> bool:
    return isinstance(e, (sp.Trace, sp.Determinant)) or isinstance(e, MatrixExpr) and e.shape == (1, 1)


def _refuse(construct: str, hint: str) -> UnsupportedTerm:
    return UnsupportedTerm(f"unsupported construct {construct}; {hint}")


def _check_matrix(e: sp.Basic) -> None:
    if isinstance(e, MatPow):
        if not e.exp.is_Integer:
            raise _refuse(f"matrix power {e}",
                          "only integer powers are supported: write X*X for X**2, X.I for X**-1 "
                          "(matrix square roots have no closed-form gradient here)")
        if not e.base.is_square:
            raise _refuse(f"power of a non-square matrix {e.base}", "powers need a square matrix")
    if isinstance(e, sp.Inverse) and not e.arg.is_square:
        raise _refuse(f"inverse of a non-square matrix {e.arg}", "invert a square matrix such as W_A*W_A.T")
    if not isinstance(e, _MATRIX_NODES):
        raise _refuse(f"{type(e).__name__} ({e})",
                      "matrices may combine by +, -, *, .T, integer powers and .I (inverse); "
                      "write an entry W[i, j] as Trace(E*W) with a constant selector E")
    for a in e.args:
        if isinstance(a, MatrixExpr):
            _check_matrix(a)
        elif isinstance(a, sp.Expr):
            check_supported(a)


def check_supported(expr: sp.Basic) -> None:
    """Raise `UnsupportedTerm` for anything `gradient` cannot differentiate exactly."""
    if isinstance(expr, MatrixExpr):
        if expr.shape != (1, 1):
            raise _refuse(f"a {expr.shape[0]}×{expr.shape[1]} matrix as a loss",
                          "a loss is a scalar: wrap it in Trace(...) or frobenius(...)")
        _check_matrix(expr)
        return
    if isinstance(expr, (sp.Trace, sp.Determinant)):
        if isinstance(expr, sp.Determinant) and not expr.arg.is_square:
            raise _refuse(f"determinant of a non-square matrix {expr.arg}", "use a square matrix")
        _check_matrix(expr.arg)
        return
    if isinstance(expr, (sp.Symbol, sp.Number, sp.NumberSymbol)) or expr.is_number:
        return
    if isinstance(expr, (sp.Add, sp.Mul)):
        for a in expr.args:
            check_supported(a)
        return
    if isinstance(expr, sp.Pow):
        if expr.exp.has(S.W_A, S.W_B):
            raise _refuse(f"a power with a W-dependent exponent ({expr})", "write exp(y*log(x)) for x**y")
        check_supported(expr.base)
        check_supported(expr.exp)
        return
    if isinstance(expr, sp.Function) and expr.func in FUNCTIONS:
        for a in expr.args:
            check_supported(a)
        return
    if isinstance(expr, sp.Abs):
        raise _refuse(f"Abs ({expr})", "|x| is not smooth; write sqrt(x**2 + eps) or x**2")
    if isinstance(expr, MatrixElement):
        raise _refuse(f"matrix entry {expr}", "write an entry W[i, j] as Trace(E*W) with a constant selector E")
    names = ", ".join(f.__name__ for f in FUNCTIONS)
    raise _refuse(f"{type(expr).__name__} ({expr})",
                  f"a loss may use +, -, *, /, real powers, Trace, det and the functions {names}")


# -- gradients ------------------------------------------------------------------------------

def _outer_atoms(expr: sp.Basic, wrt: MatrixSymbol) -> list[sp.Expr]:
    """The W-dependent traces/determinants/1×1 matrices of a scalar, outermost first."""
    found: list[sp.Expr] = []

    def walk(e: sp.Basic) -> None:
        if _is_atom(e) and e.has(wrt):
            if e not in found:
                found.append(e)
            return
        for a in e.args:
            walk(a)

    walk(expr)
    return found


def _trace_of_chain(ch: tuple, shape: tuple) -> sp.Expr:
    if not ch:
        return shape[0]  # tr(I_n) = n
    return sp.Trace(build({ch: sp.S.One}, (ch[0].shape[0], ch[-1].shape[1])))


def grad_scalar(expr: sp.Expr, wrt: MatrixSymbol) -> Chains:
    r"""$\nabla_W$ of a scalar expression, as a sum of chains of $W$'s shape."""
    if isinstance(expr, MatrixExpr):  # a 1×1 matrix used as a scalar is its own trace
        expr = sp.Trace(expr)
    if not expr.has(wrt):
        return {}
    atoms = _outer_atoms(expr, wrt)
    dummies = {a: sp.Dummy(f"u{i}") for i, a in enumerate(atoms)}
    phi = expr.xreplace(dummies)
    if phi.has(wrt):
        raise _refuse(f"{wrt} outside a trace or determinant in {expr}", "wrap matrix products in Trace(...)")
    back = {u: a for a, u in dummies.items()}
    parts = []
    for atom, u in dummies.items():
        outer = sp.diff(phi, u).xreplace(back)
        if outer != 0:
            parts.append((outer, _grad_atom(atom, wrt)))
    return combine(*parts)


def _grad_atom(atom: sp.Expr, wrt: MatrixSymbol) -> Chains:
    if isinstance(atom, sp.Determinant):
        X = atom.arg
        inv = chains(sp.Inverse(X), S.SYMMETRIC)
        return combine((atom, grad_trace(inv, X, wrt)))
    arg = atom.arg if isinstance(atom, sp.Trace) else atom
    return grad_trace({(): sp.S.One}, arg, wrt)


def grad_trace(K: Chains, X: MatrixExpr, wrt: MatrixSymbol) -> Chains:
    r"""$\nabla_W \operatorname{tr}(K X)$ with $K$ held constant (see the module docstring)."""
    sym = S.SYMMETRIC
    out: list[tuple[sp.Expr, Chains]] = []
    for ch, c in chains(X, sym).items():
        if sp.sympify(c, strict=True).has(wrt):
            tr_K_ch = sp.Add(*[kc * _trace_of_chain(kch + ch, X.shape) for kch, kc in K.items()])
            out.append((tr_K_ch, grad_scalar(c, wrt)))
        for kch, kc in K.items():
            full = kch + ch
            for j in range(len(kch), len(full)):
                f = full[j]
                rest = full[j + 1:] + full[:j]  # tr(... F ...) = tr(F rest)
                if f == wrt:
                    out.append((c * kc, {t_chain(rest, sym): sp.S.One}))
                elif isinstance(f, Transpose) and f.arg == wrt:
                    out.append((c * kc, {rest: sp.S.One}))
                elif isinstance(f, sp.Inverse) and f.has(wrt):
                    # tr(Y⁻¹ rest) → −tr(Y⁻¹ rest Y⁻¹ dY)
                    out.append((-c * kc, grad_trace({(f, *rest, f): sp.S.One}, f.arg, wrt)))
                elif f.has(wrt):
                    raise _refuse(f"factor {f}", "matrices may combine by +, -, *, .T, integer powers and .I")
    return combine(*out)


def gradient(expr: sp.Expr, wrt: MatrixSymbol) -> sp.Expr:
    r"""$\partial\,\mathrm{expr}/\partial W$ as a SymPy matrix expression of $W$'s shape."""
    check_supported(expr)
    return build(grad_scalar(expr, wrt), wrt.shape)


def normalize(expr: sp.Expr) -> sp.Expr:
    """Traces and matrices rewritten in expanded chain normal form (integer powers become
    repeated factors or inverses), which is what the code generator compiles best."""
    sym = S.SYMMETRIC

    def fix(tr: sp.Trace) -> sp.Expr:
        return sp.Add(*[c * _trace_of_chain(ch, tr.arg.shape) for ch, c in chains(tr.arg, sym).items()])

    if isinstance(expr, MatrixExpr):
        chs = chains(expr, sym)
        return build({ch: normalize(sp.sympify(c, strict=True)) for ch, c in chs.items()}, expr.shape)
    return expr.replace(lambda e: isinstance(e, sp.Trace), fix)
