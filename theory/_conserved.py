r"""The conserved quantity $Q = W_A W_A^\top - W_B W_B^\top$ (THEORY §4).

Any loss of $W_A^\top W_B$ alone is invariant under $W_A \to G W_A$,
$W_B \to G^{-\top} W_B$; Noether's theorem then makes $Q$ constant along the flow:
$\dot Q = \dot W_A W_A^\top + W_A \dot W_A^\top - \dot W_B W_B^\top - W_B \dot W_B^\top = 0$.
"""

from __future__ import annotations

import sympy as sp

from . import _symbols as S
from ._flow import GradientFlow

Q = S.W_A * S.W_A.T - S.W_B * S.W_B.T


def dQ_dt(flow: GradientFlow) -> sp.Expr:
    """$\\dot Q$ along `flow`, as a matrix expression (zero only after entry-wise expansion)."""
    dA, dB = flow.dW_A, flow.dW_B
    return (dA * S.W_A.T + S.W_A * dA.T - dB * S.W_B.T - S.W_B * dB.T).doit()
