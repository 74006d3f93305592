r"""Sums of matrix chains: the normal form used to rewrite, compare and differentiate flows.

A matrix expression that is a polynomial in matrix symbols is, once expanded, a sum

$$\sum_i c_i\, F_{i1} F_{i2} \cdots F_{in_i}$$

of scalar coefficients $c_i$ times *chains* of factors, each factor a `MatrixSymbol`, its
`Transpose`, or an opaque inverse $Y^{-1}$ (an `Inverse` whose argument is itself in normal
form, so equal inverses are the same factor; $(Y^{-1})^\top = (Y^\top)^{-1}$). Integer
matrix powers are repeated factors ($X^{-n} = (X^{-1})^n$). Coefficients are any scalar
expressions, traces included. `chains()` computes that form (transposes pushed to the leaves,
identities dropped, symmetric symbols' transposes folded, equal chains collected), which
makes three things easy that SymPy's own `MatMul` does not do reliably:

* **rewriting** with algebraic rules on adjacent factors, such as $U^\top U = I$ or
  $R\,U = 0$ (`rewrite`), which is how the reduced ODE of THEORY §8 is derived;
* **comparing** two expressions exactly (two normal forms are equal as dicts);
* **differentiating** along a direction, factor by factor (product rule).
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping

import sympy as sp
from sympy import MatAdd, MatMul, MatPow, MatrixExpr, MatrixSymbol, Transpose

#: A chain of factors (each a MatrixSymbol or Transpose(MatrixSymbol)); () is the identity.
Chain = tuple[sp.Expr, ...]
#: A sum of chains: {chain: scalar coefficient}.
Chains = dict[Chain, sp.Expr]


def t_factor(f: sp.Expr, symmetric: Iterable[MatrixSymbol] = ()) -> sp.Expr:
    """Transpose one factor, folding $S^\\top = S$ for symmetric symbols."""
    if isinstance(f, Transpose):
        return f.arg
    if isinstance(f, sp.Inverse):
        return inverse_factor(Transpose(f.arg), symmetric)
    return f if f in set(symmetric) else Transpose(f)


def inverse_factor(arg: sp.Expr, symmetric: Iterable[MatrixSymbol] = ()) -> sp.Expr:
    """The opaque factor $Y^{-1}$, with $Y$ rebuilt from its normal form (one node per value)."""
    inner = chains(arg, symmetric)
    if not inner:
        raise ZeroDivisionError(f"chains: the inverse of a zero matrix ({arg})")
    return sp.Inverse(build(inner, arg.shape))


def t_chain(ch: Chain, symmetric: Iterable[MatrixSymbol] = ()) -> Chain:
    """$(F_1 \\cdots F_n)^\\top = F_n^\\top \\cdots F_1^\\top$."""
    sym = tuple(symmetric)
    return tuple(t_factor(f, sym) for f in reversed(ch))


def _add(out: Chains, ch: Chain, c: sp.Expr) -> None:
    total = sp.expand(out.get(ch, sp.S.Zero) + c)
    if total == 0:
        out.pop(ch, None)
    else:
        out[ch] = total


def _product(a: Chains, b: Chains) -> Chains:
    out: Chains = {}
    for ca, xa in a.items():
        for cb, xb in b.items():
            _add(out, ca + cb, xa * xb)
    return out


def chains(expr: sp.Expr, symmetric: Iterable[MatrixSymbol] = ()) -> Chains:
    """The expanded sum-of-chains normal form of a polynomial matrix expression."""
    sym = tuple(symmetric)
    if isinstance(expr, MatrixSymbol):
        return {(expr,): sp.S.One}
    if isinstance(expr, sp.Identity):
        return {(): sp.S.One}
    if isinstance(expr, sp.ZeroMatrix):
        return {}
    if isinstance(expr, Transpose):
        return {t_chain(ch, sym): c for ch, c in chains(expr.arg, sym).items()}
    if isinstance(expr, MatAdd):
        out: Chains = {}
        for a in expr.args:
            for ch, c in chains(a, sym).items():
                _add(out, ch, c)
        return out
    if isinstance(expr, MatMul):
        acc: Chains = {(): sp.S.One}
        for a in expr.args:
            acc = _product(acc, chains(a, sym) if isinstance(a, MatrixExpr) else {(): a})
        return acc
    if isinstance(expr, sp.Inverse):
        return {(inverse_factor(expr.arg, sym),): sp.S.One}
    if isinstance(expr, MatPow):
        n = expr.exp
        if not (n.is_Integer and expr.base.is_square):
            raise TypeError(f"chains: only integer powers of square matrices are supported, got {expr}")
        base = chains(expr.base, sym) if n >= 0 else {(inverse_factor(expr.base, sym),): sp.S.One}
        acc = {(): sp.S.One}
        for _ in range(abs(int(n))):
            acc = _product(acc, base)
        return acc
    raise TypeError(f"chains: unsupported matrix node {type(expr).__name__}: {expr}")


def build(chs: Mapping[Chain, sp.Expr], shape: tuple) -> sp.Expr:
    """A SymPy matrix expression from a sum of chains (`shape` is needed for () and 0)."""
    terms = []
    for ch, c in sorted(chs.items(), key=lambda kv: (len(kv[0]), str(kv[0]))):
        body = sp.Identity(shape[0]) if not ch else (ch[0] if len(ch) == 1 else MatMul(*ch))
        terms.append(body if c == 1 else MatMul(c, body) if isinstance(body, MatMul) else c * body)
    if not terms:
        return sp.ZeroMatrix(*shape)
    return terms[0] if len(terms) == 1 else MatAdd(*terms)


def factor_right(chs: Mapping[Chain, sp.Expr], shape: tuple,
                 allow: Callable[[sp.Expr], bool] = lambda f: True) -> sp.Expr:
    r"""Horner form on the right: $\sum_i c_i P_i F + \dots = (\sum_i c_i P_i) F + \dots$.

    Repeatedly collects the chains that end in the most common last factor $F$ (among
    those `allow` accepts), so $F$ is multiplied once instead of once per chain. The
    result is the same matrix; only the number of products changes.
    """
    counts: dict[sp.Expr, int] = {}
    for ch in chs:
        if ch and allow(ch[-1]):
            counts[ch[-1]] = counts.get(ch[-1], 0) + 1
    best = max(counts, key=lambda f: (counts[f], str(f)), default=None)
    if best is None or counts[best] < 2:
        return build(chs, shape)
    grouped = {ch[:-1]: c for ch, c in chs.items() if ch and ch[-1] == best}
    rest = {ch: c for ch, c in chs.items() if not (ch and ch[-1] == best)}
    term = MatMul(factor_right(grouped, (shape[0], best.shape[0]), allow), best)
    return term if not rest else MatAdd(term, factor_right(rest, shape, allow))


def rewrite(chs: Chains, rules: Mapping[Chain, "Chain | Chains | None"],
            symmetric: Iterable[MatrixSymbol] = ()) -> Chains:
    """Apply rules `pattern -> replacement` to contiguous factors until none applies.

    A replacement is a chain, a sum of chains (`{chain: coeff}`), or None (the chain
    vanishes). Each rule also applies in transposed form ($P^\top \to Y^\top$). Rules must
    shorten chains or rename factors, so this ends.
    """
    sym = tuple(symmetric)

    def as_sum(rep) -> Chains | None:
        return None if rep is None else dict(rep) if isinstance(rep, dict) else {tuple(rep): sp.S.One}

    full: dict[Chain, Chains | None] = {}
    for pat, rep in rules.items():
        full[pat] = as_sum(rep)
        tr = None if full[pat] is None else {t_chain(ch, sym): c for ch, c in full[pat].items()}
        full.setdefault(t_chain(pat, sym), tr)
    out: Chains = {}
    work = list(chs.items())
    while work:
        ch, c = work.pop()
        hit = next(((i, pat) for pat in full for i in range(len(ch) - len(pat) + 1)
                    if ch[i:i + len(pat)] == pat), None)
        if hit is None:
            _add(out, ch, c)
            continue
        i, pat = hit
        rep = full[pat]
        for rch, rc in (rep or {}).items():
            work.append((ch[:i] + rch + ch[i + len(pat):], c * rc))
    return out


def multiply(chs: Chains, left: Chain = (), right: Chain = ()) -> Chains:
    """$L \\cdot (\\sum c_i F_i) \\cdot R$."""
    out: Chains = {}
    for ch, c in chs.items():
        _add(out, left + ch + right, c)
    return out


def combine(*parts: tuple[sp.Expr, Chains]) -> Chains:
    """$\\sum_k a_k X_k$ for sums of chains $X_k$."""
    out: Chains = {}
    for a, chs in parts:
        for ch, c in chs.items():
            _add(out, ch, a * c)
    return out


def symbols_in(chs: Chains) -> set[sp.Expr]:
    """The factors (transposes stripped) of a sum of chains, and the matrix symbols of its coefficients."""
    factors = {f.arg if isinstance(f, Transpose) else f for ch in chs for f in ch}
    return factors | {a for c in chs.values() for a in sp.sympify(c, strict=True).atoms(MatrixSymbol)}


def equal(a: sp.Expr, b: sp.Expr, symmetric: Iterable[MatrixSymbol] = ()) -> bool:
    """Exact equality of two polynomial matrix expressions (normal forms compared)."""
    diff = combine((sp.S.One, chains(a, symmetric)), (sp.S.NegativeOne, chains(b, symmetric)))
    return not diff
