r"""The gradient flow of THEORY §3, $\dot W = -\partial L/\partial W$, for any registered terms.

For `terms=("pos", "neg")`:

$$\dot W_A = W_B C^\top - \lambda\, W_B \Sigma_B W_B^\top W_A \Sigma_A, \qquad
  \dot W_B = W_A C - \lambda\, W_A \Sigma_A W_A^\top W_B \Sigma_B .$$
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import sympy as sp

from ._diskcache import disk_cached
from . import _symbols as S
from ._gradient import matrix_gradient
from ._latex import latex_flow, unicode, weighted_sum
from ._latex_document import LatexRepr
from ._terms import LossTerm, get_term


@dataclass(frozen=True)
class GradientFlow(LatexRepr):
    """Loss, per-term gradients and the flow $(\\dot W_A, \\dot W_B)$ of a set of terms.

    In a notebook it renders as LaTeX (`_repr_latex_`); `repr` is one line, `pretty()` the
    Unicode equations."""

    terms: tuple[LossTerm, ...]
    loss: sp.Expr
    grads_A: dict[str, sp.Expr] = field(repr=False)
    grads_B: dict[str, sp.Expr] = field(repr=False)
    dW_A: sp.Expr = field(repr=False)
    dW_B: sp.Expr = field(repr=False)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.terms)

    def latex(self) -> str:
        """LaTeX (an `aligned` block) of the loss and both flow equations."""
        return latex_flow(self._weighted(), self.dW_A, self.dW_B)

    def _weighted(self) -> list[tuple[sp.Expr, sp.Expr]]:
        return [(t.weight, t.expr) for t in self.terms]

    def __repr__(self) -> str:
        return f"GradientFlow({' + '.join(self.names)}: L = {weighted_sum(self._weighted(), unicode)})"

    def _caption(self) -> str:
        return f"Gradient flow of {' + '.join(self.names)}"

    def pretty(self) -> str:
        """Unicode rendering for a terminal."""
        return "\n".join([
            f"L       = {weighted_sum(self._weighted(), unicode)}",
            f"dW_A/dt = {unicode(self.dW_A)}",
            f"dW_B/dt = {unicode(self.dW_B)}",
        ])


def _validate(terms: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(terms, str):
        terms = tuple(t.strip() for t in terms.split(",") if t.strip())
    terms = tuple(terms)
    if not terms:
        raise ValueError("terms: at least one loss term is required")
    if len(set(terms)) != len(terms):
        raise ValueError(f"terms: duplicate term in {terms}")
    return terms


def gradient_flow(terms: tuple[str, ...] | str = ("pos", "neg")) -> GradientFlow:
    """Derive $L = \\sum w_i L_i$ and its gradient flow for the named terms."""
    names = _validate(terms)
    return _gradient_flow(tuple(get_term(n) for n in names))


@lru_cache(maxsize=64)
@disk_cached
def _gradient_flow(terms: tuple[LossTerm, ...]) -> GradientFlow:
    grads_A = {t.name: matrix_gradient(t.expr, S.W_A) for t in terms}
    grads_B = {t.name: matrix_gradient(t.expr, S.W_B) for t in terms}
    dA = [-t.weight * grads_A[t.name] for t in terms if not isinstance(grads_A[t.name], sp.ZeroMatrix)]
    dB = [-t.weight * grads_B[t.name] for t in terms if not isinstance(grads_B[t.name], sp.ZeroMatrix)]
    loss = sp.Add(*[t.weight * t.expr for t in terms])
    dW_A = sp.MatAdd(*dA).doit() if dA else sp.ZeroMatrix(*S.W_A.shape)
    dW_B = sp.MatAdd(*dB).doit() if dB else sp.ZeroMatrix(*S.W_B.shape)
    return GradientFlow(terms, loss, grads_A, grads_B, dW_A, dW_B)
