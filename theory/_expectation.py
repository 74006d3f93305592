r"""The expectation step: per-sample terms to population (matrix) forms by moment rules.

A term is a sum of chains $K_0 u_1 v_1^\top K_1 u_2 v_2^\top \cdots$ of constant matrices
and random vectors. When the outer products $u_i v_i^\top$ are mutually independent,

$$\mathbb E\,[K_0 u_1 v_1^\top K_1 \cdots] = K_0\, \mathbb E[u_1 v_1^\top]\, K_1 \cdots,$$

and a $1\times 1$ chain is a trace, so it may be rotated cyclically first. A square
$s^2$ of a scalar chain is rewritten as $s\,s^\top$, which is what pairs $x_A$ with
$x_A$ and $\tilde x_B$ with $\tilde x_B$ in $\ell_-$. Anything that needs moments beyond
the second (dependent outer products) raises `NotImplementedError`: nothing is guessed.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import sympy as sp
from sympy import MatAdd, MatMul, MatPow, MatrixExpr, MatrixSymbol, Transpose

from ._diskcache import disk_cached
from . import _symbols as S


def _chain(term: sp.Expr) -> tuple[sp.Expr, list[sp.Expr]]:
    """Split a product into (scalar coefficient, list of matrix factors)."""
    if isinstance(term, MatMul):
        coeff, mats = term.as_coeff_matrices()
        return coeff, list(mats)
    if isinstance(term, sp.Mul):
        coeff = sp.Mul(*[a for a in term.args if not isinstance(a, MatrixExpr)])
        mats = [a for a in term.args if isinstance(a, MatrixExpr)]
        return coeff, mats
    return sp.S.One, [term]


def _random_base(f: sp.Expr) -> tuple[MatrixSymbol, bool] | None:
    """(vector, is_row) if the factor is a random vector or its transpose."""
    if isinstance(f, Transpose) and f.arg in S.INDEPENDENCE_GROUP:
        return f.arg, True
    if f in S.INDEPENDENCE_GROUP:
        return f, False
    return None


def moment(u: MatrixSymbol, v: MatrixSymbol, moments: dict) -> sp.Expr:
    """$\\mathbb E[u v^\\top]$ from a table; zero when independent and mean zero."""
    if (u, v) in moments:
        return moments[(u, v)]
    if (v, u) in moments:
        return Transpose(moments[(v, u)]).doit()
    if S.INDEPENDENCE_GROUP[u] != S.INDEPENDENCE_GROUP[v]:
        return sp.ZeroMatrix(u.shape[0], v.shape[0])
    raise NotImplementedError(f"no second moment known for E[{u} {v}^T]")


def _expect_chain(coeff: sp.Expr, mats: list[sp.Expr], moments: dict) -> sp.Expr:
    is_scalar = mats[0].shape[0] == 1 and mats[-1].shape[1] == 1
    randoms = [i for i, f in enumerate(mats) if _random_base(f) is not None]
    if not randoms:
        return coeff * MatMul(*mats) if len(mats) > 1 else coeff * mats[0]
    if is_scalar:
        # Rotate (trace is cyclic) so the chain ends on a row vector: pairs become adjacent.
        last_row = max(i for i in randoms if _random_base(mats[i])[1])
        mats = mats[last_row + 1:] + mats[: last_row + 1]
    out: list[sp.Expr] = []
    used_groups: list[str] = []
    i = 0
    while i < len(mats):
        rb = _random_base(mats[i])
        if rb is None:
            out.append(mats[i])
            i += 1
            continue
        nxt = _random_base(mats[i + 1]) if i + 1 < len(mats) else None
        if rb[1] or nxt is None or not nxt[1]:
            raise NotImplementedError("random vectors are not in outer-product pairs")
        u, v = rb[0], nxt[0]
        groups = {S.INDEPENDENCE_GROUP[u], S.INDEPENDENCE_GROUP[v]}
        if groups & set(used_groups):
            raise NotImplementedError("outer products are not independent (needs 4th moments)")
        used_groups.extend(groups)
        out.append(moment(u, v, moments))
        i += 2
    if any(isinstance(f, sp.ZeroMatrix) for f in out):
        return sp.S.Zero
    body = MatMul(*out).doit() if len(out) > 1 else out[0]
    return coeff * (sp.Trace(body) if is_scalar and body.shape != (1, 1) else body)


def _is_scalar(e: sp.Expr) -> bool:
    return isinstance(e, MatrixExpr) and e.shape == (1, 1)


def _expect_term(term: sp.Expr, moments: dict) -> sp.Expr:
    coeff, mats = _chain(term)
    # Expand squares of 1x1 chains into s s^T, and try every transpose pattern of the
    # scalar factors until the outer products come out independent.
    factors: list[sp.Expr] = []
    for f in mats:
        if isinstance(f, MatPow) and _is_scalar(f.base) and f.exp.is_Integer and f.exp > 0:
            factors.extend([f.base] * int(f.exp))
        else:
            factors.append(f)
    if not all(_is_scalar(f) for f in factors) or len(factors) == 1:
        flat = [g for f in factors for g in _chain(f)[1]]
        c = coeff * sp.Mul(*[_chain(f)[0] for f in factors])
        return _expect_chain(c, flat, moments)
    last_error: Exception | None = None
    for flips in itertools.product((False, True), repeat=len(factors) - 1):
        parts = [factors[0]] + [Transpose(f).doit() if fl else f for f, fl in zip(factors[1:], flips)]
        flat, c = [], coeff
        for p in parts:
            pc, pm = _chain(p)
            c, flat = c * pc, flat + pm
        try:
            return _expect_chain(c, flat, moments)
        except NotImplementedError as err:
            last_error = err
    raise NotImplementedError(str(last_error))


def expectation(expr: sp.Expr, moments: dict) -> sp.Expr:
    """Exact $\\mathbb E$ of a polynomial in random vectors, by second-moment rules."""
    expr = sp.expand(expr)
    terms = expr.args if isinstance(expr, (MatAdd, sp.Add)) else (expr,)
    total = [_expect_term(t, moments) for t in terms]
    total = [t for t in total if t != 0 and not isinstance(t, sp.ZeroMatrix)]
    if not total:
        return sp.S.Zero
    if any(isinstance(t, MatrixExpr) and t.shape != (1, 1) for t in total):
        return MatAdd(*total).doit()
    return sp.Add(*total)


def view_moments() -> dict:
    r"""Second moments of the views, derived from the data model:
    $\Sigma_A = A\Sigma_z A^\top + A_\xi A_\xi^\top$, $C = A \Sigma_z B^\top$, etc."""
    return dict(_view_moments())  # a fresh dict: callers may add to it


@lru_cache(maxsize=1)
@disk_cached
def _view_moments() -> tuple:
    # Derived once per process: every Problem and every form of the flow reads these.
    out = []
    pairs = [(S.x_A, S.x_A), (S.x_B, S.x_B), (S.x_A, S.x_B), (S.x_B_neg, S.x_B_neg)]
    for u, v in pairs:
        outer = S.DATA_MODEL[u] * Transpose(S.DATA_MODEL[v]).doit()
        out.append(((u, v), expectation(outer, S.BASE_MOMENTS)))
    return tuple(out)


def named_view_moments() -> dict:
    """The moment table of the views, in the named symbols $\\Sigma_A, \\Sigma_B, C$."""
    return {
        (S.x_A, S.x_A): S.Sigma_A,
        (S.x_B, S.x_B): S.Sigma_B,
        (S.x_B_neg, S.x_B_neg): S.Sigma_B,
        (S.x_A, S.x_B): S.C,
    }
