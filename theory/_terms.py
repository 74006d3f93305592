r"""The registry of loss terms.

A term is a population loss $L_i(W_A, W_B)$ with a scalar weight ($1$, $\lambda$ or
$\mu$); the total loss is $L = \sum_i w_i L_i$. The built-in `pos` and `neg` are
*derived* from their per-sample forms by the expectation step:

$$\ell_+ = -\langle W_A x_A, W_B x_B\rangle, \qquad
  \ell_- = \tfrac12 \langle W_A x_A, W_B \tilde x_B\rangle^2 .$$

A user adds a term by registering any smooth SymPy scalar built from traces in `W_A`,
`W_B` and the data symbols: sums, products and real powers of traces, matrix powers and
inverses inside them, determinants, Frobenius norms and the functions of
`theory.FUNCTIONS` (log, exp, ...). It is checked and differentiated *at registration*
(`theory._calculus`), so an unsupported construct is refused there, by name:

```python
import sympy
from cdyn import theory
from cdyn.theory.symbols import W_A, W_B, Sigma_A
P = W_A * Sigma_A * W_A.T
theory.register_term("logdet", -sympy.log(sympy.det(P + sympy.Identity(P.shape[0]))), weight=sympy.Symbol("nu"))
```
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy import MatrixExpr, Transpose

from . import _symbols as S
from ._calculus import UnsupportedTerm, check_supported, grad_scalar
from ._expectation import expectation, named_view_moments


@dataclass(frozen=True)
class LossTerm:
    """One weighted term $w\\,L$ of the loss."""

    name: str
    expr: sp.Expr
    weight: sp.Expr = sp.S.One
    per_sample: sp.Expr | None = None
    description: str = ""


_REGISTRY: dict[str, LossTerm] = {}


def _score(chain: list[sp.Expr]) -> tuple:
    transposes = sum(isinstance(f, Transpose) for f in chain)
    # Read as in THEORY: a trace starts at an encoder, W_A before W_B.
    start = 0 if chain[0] == S.W_A else 1 if chain[0] == S.W_B else 2
    return (start, transposes, [str(f) for f in chain])


def canonical_trace(expr: sp.Expr) -> sp.Expr:
    """Rewrite each `Trace(chain)` in its most readable equivalent rotation/transpose."""

    def fix(tr: sp.Trace) -> sp.Expr:
        arg = tr.arg
        if not isinstance(arg, sp.MatMul):
            return tr
        coeff, mats = arg.as_coeff_matrices()
        rev = [Transpose(f).doit() for f in reversed(mats)]
        options = [c[i:] + c[:i] for c in (list(mats), rev) for i in range(len(mats))]
        best = min(options, key=_score)
        return coeff * sp.Trace(sp.MatMul(*best))

    return expr.replace(lambda e: isinstance(e, sp.Trace), fix)


def register_term(
    name: str,
    expr: sp.Expr,
    weight: sp.Expr = sp.S.One,
    *,
    per_sample: sp.Expr | None = None,
    description: str = "",
    replace: bool = False,
) -> LossTerm:
    """Add a loss term to the registry; it then flows through derive, compile and integrate."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"term name must be an identifier, got {name!r}")
    if name in _REGISTRY and not replace:
        raise ValueError(f"term {name!r} is already registered (pass replace=True)")
    if not isinstance(expr, sp.Basic) or isinstance(expr, MatrixExpr) and expr.shape != (1, 1):
        raise TypeError(f"term {name!r}: expr must be a scalar SymPy expression (wrap a matrix in Trace(...))")
    if isinstance(expr, MatrixExpr):
        expr = sp.Trace(expr)  # a 1×1 matrix is its own trace
    expr = expr.xreplace({Transpose(s): s for s in S.SYMMETRIC})  # Σᵀ = Σ: print and compile one form
    if not expr.has(S.W_A) and not expr.has(S.W_B):
        raise ValueError(f"term {name!r}: expr does not depend on W_A or W_B")
    weight = _weight(name, weight)
    try:
        check_supported(expr)
        for W in S.STATE:  # derive now: whatever cannot be differentiated is refused here
            grad_scalar(expr, W)
    except UnsupportedTerm as err:
        raise UnsupportedTerm(f"term {name!r}: {err}") from None
    except (TypeError, ZeroDivisionError) as err:
        raise UnsupportedTerm(f"term {name!r}: cannot differentiate {expr}: {err}") from None
    term = LossTerm(name, canonical_trace(expr), weight, per_sample, description)
    _REGISTRY[name] = term
    return term


def _weight(name: str, weight: object) -> sp.Expr:
    """A term's weight: a number or a scalar SymPy expression free of W (strings are never parsed)."""
    if isinstance(weight, bool) or weight is None:
        raise TypeError(f"term {name!r}: weight must be a number or a SymPy expression, got {weight!r}")
    if isinstance(weight, int):
        return sp.Integer(weight)
    if isinstance(weight, float):
        if weight != weight or weight in (float("inf"), float("-inf")):
            raise ValueError(f"term {name!r}: weight must be finite, got {weight!r}")
        return sp.Float(weight)
    if isinstance(weight, sp.Expr) and not isinstance(weight, MatrixExpr):
        if weight.has(S.W_A, S.W_B) or weight.atoms(sp.MatrixSymbol):
            raise ValueError(f"term {name!r}: weight must be a scalar free of matrices, got {weight}")
        return weight
    hint = " (strings are not evaluated: pass sympy.Symbol('nu'))" if isinstance(weight, str) else ""
    raise TypeError(f"term {name!r}: weight must be a number or a SymPy expression, got "
                    f"{type(weight).__name__}{hint}")


def unregister_term(name: str) -> None:
    """Remove a user term (the built-ins can be replaced but not removed)."""
    if name in ("pos", "neg", "wd"):
        raise ValueError(f"term {name!r} is built in")
    _REGISTRY.pop(name, None)


def get_term(name: str) -> LossTerm:
    """Look up a term by name, with an error that lists the known names."""
    if not isinstance(name, str):
        raise TypeError(f"terms: term names must be strings, got {type(name).__name__}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"terms: unknown loss term {name!r}; known: {', '.join(_REGISTRY)}") from None


def available_terms() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def per_sample_pos() -> sp.Expr:
    return -((S.W_A * S.x_A).T * (S.W_B * S.x_B))


def per_sample_neg() -> sp.Expr:
    return sp.S.Half * ((S.W_A * S.x_A).T * (S.W_B * S.x_B_neg)) ** 2


def _register_builtins() -> None:
    moments = named_view_moments()
    for name, ell, weight, text in (
        ("pos", per_sample_pos(), sp.S.One, "positive pairs: -<W_A x_A, W_B x_B>"),
        ("neg", per_sample_neg(), S.lam, "negative pairs: 1/2 <W_A x_A, W_B x~_B>^2"),
    ):
        register_term(name, expectation(ell, moments), weight, per_sample=ell,
                      description=text, replace=True)
    wd = (sp.Trace(S.W_A * S.W_A.T) + sp.Trace(S.W_B * S.W_B.T)) / 2
    register_term("wd", wd, S.mu, description="weight decay: mu/2 (|W_A|^2 + |W_B|^2)", replace=True)


_register_builtins()
