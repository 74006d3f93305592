r"""The Jacobian of a flow, at matrix level: the linear operator $V \mapsto J[V]$.

For a right-hand side $F(W)$ that is a sum of chains, the directional (Gateaux)
derivative is derived by substituting $W \to W + \varepsilon V$ and keeping the
coefficient of $\varepsilon^1$:

$$J[V] = \frac{d}{d\varepsilon} F(W + \varepsilon V)\Big|_{\varepsilon=0}.$$

Every chain of $J[V]$ holds exactly one direction factor, so it is $c\,L\,V\,R$ or
$c\,L\,V^\top R$ with $L$, $R$ chains of the state and data. With row-major
vectorisation, $\mathrm{vec}(L V R) = (L \otimes R^\top)\,\mathrm{vec}\,V$ and
$\mathrm{vec}(L V^\top R)_{(i,j),(l,k)} = L_{ik} R_{lj}$: `numerics` compiles $L$ and $R$ and
assembles the dense matrix from these terms. For the flow of THEORY §3, e.g.

$$J_{AA}[V_A] = -\lambda\, W_B\Sigma_B W_B^\top V_A \Sigma_A .$$
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import sympy as sp
from sympy import MatrixSymbol, Transpose

from ._chains import Chain, build, chains
from ._derivations import derivation_section
from ._latex import latex

_eps = sp.Symbol("varepsilon")


def direction(sym: MatrixSymbol) -> MatrixSymbol:
    """The direction symbol $V_{W}$ that perturbs state symbol $W$."""
    return MatrixSymbol(f"V_{{{sym.name}}}", *sym.shape)


@dataclass(frozen=True)
class JacobianTerm:
    """$c\\,L\\,V\\,R$ (or $c\\,L\\,V^\\top R$ when `transposed`); empty chains are identities."""

    coeff: sp.Expr
    left: Chain
    transposed: bool
    right: Chain


@dataclass(frozen=True)
class Jacobian:
    """Blocks `{(output, state name): [JacobianTerm]}` and the operator as expressions."""

    outputs: tuple[str, ...]
    state: tuple[MatrixSymbol, ...]
    blocks: dict[tuple[str, str], list[JacobianTerm]] = field(repr=False)
    directional: dict[str, sp.Expr] = field(repr=False)

    def directions(self) -> tuple[MatrixSymbol, ...]:
        return tuple(direction(s) for s in self.state)


class NotPolynomial(ValueError):
    """The flow is not a polynomial in the state (an inverse, or a trace in a coefficient)."""


def _check_polynomial(name: str, expr: sp.Expr, state: tuple[MatrixSymbol, ...], symmetric: tuple) -> None:
    for ch, c in chains(expr, symmetric).items():
        odd = [f for f in ch if not isinstance(f, (MatrixSymbol, Transpose))]
        if odd or sp.sympify(c, strict=True).has(*state):
            what = odd[0] if odd else c
            raise NotPolynomial(f"jacobian: {name} is not a polynomial in the state ({what}); "
                                "solvers fall back to finite-difference Jacobians")


def jacobian(outputs: Mapping[str, sp.Expr], state: tuple[MatrixSymbol, ...],
             symmetric: tuple[MatrixSymbol, ...] = ()) -> Jacobian:
    """Derive the Jacobian of `outputs` (each a polynomial in `state`) as a linear operator.

    Raises `NotPolynomial` otherwise: the $\varepsilon$-expansion below would miss the
    $\varepsilon$ inside an inverse or a trace coefficient.
    """
    for name, expr in outputs.items():
        _check_polynomial(name, expr, tuple(state), tuple(symmetric))
    dirs = {s: direction(s) for s in state}
    perturb = {s: s + _eps * v for s, v in dirs.items()}
    blocks: dict[tuple[str, str], list[JacobianTerm]] = {(o, s.name): [] for o in outputs for s in state}
    directional: dict[str, sp.Expr] = {}
    for name, expr in outputs.items():
        first: dict[Chain, sp.Expr] = {}
        for ch, c in chains(expr.xreplace(perturb), symmetric).items():
            c1 = sp.expand(c).coeff(_eps, 1)
            if c1 != 0:
                first[ch] = c1
        directional[name] = build(first, expr.shape)
        for ch, c in first.items():
            hits = [(i, f) for i, f in enumerate(ch) if (f.arg if isinstance(f, Transpose) else f) in dirs.values()]
            if len(hits) != 1:
                raise ArithmeticError(f"jacobian: term {ch} of {name} is not linear in the direction")
            i, f = hits[0]
            base = f.arg if isinstance(f, Transpose) else f
            s = next(k for k, v in dirs.items() if v == base)
            blocks[name, s.name].append(JacobianTerm(c, ch[:i], isinstance(f, Transpose), ch[i + 1:]))
    return Jacobian(tuple(outputs), tuple(state), blocks, directional)


@derivation_section("jacobian", "The Jacobian of the flow as a linear operator")
def _derivation() -> list[tuple[str, str]]:
    from . import _symbols as S
    from ._flow import gradient_flow

    flow = gradient_flow(("pos", "neg"))
    jac = jacobian({"dW_A": flow.dW_A, "dW_B": flow.dW_B}, (S.W_A, S.W_B), S.SYMMETRIC)
    va, vb = (latex(v) for v in jac.directions())
    return [("directional derivative", rf"\begin{{aligned}}J_A[{va}, {vb}] &= {latex(jac.directional['dW_A'])} \\ "
                                       rf"J_B[{va}, {vb}] &= {latex(jac.directional['dW_B'])}\end{{aligned}}"),
            ("vectorised", r"\operatorname{vec}(L V R) = (L \otimes R^{\top})\operatorname{vec} V,\qquad "
                           r"\operatorname{vec}(L V^{\top} R)_{(i,j),(l,k)} = L_{ik} R_{lj}")]
