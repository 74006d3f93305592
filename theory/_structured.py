r"""The flow in factored form: $\Sigma_A$, $\Sigma_B$ and $C$ never appear, only thin factors.

The flow of THEORY §3 reads $\Sigma_A$ ($d_A\times d_A$). The data model gives it as thin
factors, $\Sigma_A = A\Sigma_z A^\top + A_\xi A_\xi^\top$ and $C = A\Sigma_z B^\top$ (derived by
the expectation step, `view_moments`). Substituting those *derived* moments and
expanding into chains gives a flow in which every chain is a product of $m\times d$,
$d\times r$, $d\times k$ and small factors, e.g.

$$W_B\Sigma_B W_B^\top W_A\Sigma_A = W_B B\Sigma_z B^\top W_B^\top W_A A \Sigma_z A^\top + \dots$$

A matrix-chain order on such a chain costs $O(m\,d\,(r+k))$; no order of the original
chain avoids $O(m\,d^2)$. The choice of form is made here, symbolically: the compiler
only sees thinner chains and orders them.

The noise of each view is one of

* `"thin"`: $A_\xi$ is a $d_A\times k_A$ symbol (any noise; cheap when $k_A \ll d_A$);
* `"isotropic"`: $A_\xi = \sigma_A I$, so $A_\xi A_\xi^\top = \sigma_A^2 I$ and
  $W_A\Sigma_A = W_A A\Sigma_z A^\top + \sigma_A^2 W_A$;
* `"none"`: $A_\xi = 0$.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import sympy as sp

from ._diskcache import disk_cached
from . import _symbols as S
from ._calculus import normalize
from ._chains import chains, factor_right
from ._expectation import view_moments
from ._flow import _gradient_flow, gradient_flow
from ._derivations import derivation_section
from ._latex import latex
from ._latex_document import LatexRepr
from ._latex_layout import fit

#: Isotropic noise levels, $A_\xi = \sigma_A I$ and $B_\xi = \sigma_B I$ (THEORY §8).
sigma_A, sigma_B = sp.symbols("sigma_A sigma_B", nonnegative=True)

NOISE_KINDS = ("none", "isotropic", "thin")


def noise_substitution(noise_A: str = "thin", noise_B: str = "thin") -> dict:
    """`{A_xi: ..., B_xi: ...}` for the chosen noise kinds (empty for "thin")."""
    out = {}
    for kind, sym, sigma, d, k, name in ((noise_A, S.A_xi, sigma_A, S.d_A, S.k_A, "noise_A"),
                                         (noise_B, S.B_xi, sigma_B, S.d_B, S.k_B, "noise_B")):
        if kind not in NOISE_KINDS:
            raise ValueError(f"{name}: unknown noise kind {kind!r}; choose from {', '.join(NOISE_KINDS)}")
        if kind == "isotropic":
            out[sym] = sigma * sp.Identity(d)
        elif kind == "none":
            out[sym] = sp.ZeroMatrix(d, k)
    return out


def factored_moments(noise_A: str = "thin", noise_B: str = "thin") -> dict:
    r"""`{Sigma_A: A Σ_z Aᵀ + ..., Sigma_B: ..., C: A Σ_z Bᵀ}`: the derived moments, noise substituted."""
    mom = view_moments()
    noise = noise_substitution(noise_A, noise_B)
    named = {S.Sigma_A: mom[(S.x_A, S.x_A)], S.Sigma_B: mom[(S.x_B, S.x_B)], S.C: mom[(S.x_A, S.x_B)]}
    return {k: v.xreplace(noise) for k, v in named.items()}


#: The dimensions that are large in the regime this form is for ($d \gg r, k, m$).
LARGE = (S.d_A, S.d_B)


def _wide(f: sp.Expr) -> bool:
    r"""A factor thin inside and large outside ($A^\top$: $r\times d_A$, $W_A$: $m\times d_A$).

    Collecting chains by such a last factor turns $n$ products of cost $O(m\,r\,d)$ into
    one, and the prefix sum is only $m\times r$. Collecting by a factor that is large
    inside (e.g. $W_B^\top$, $d_B\times m$) would instead build $m\times d$ prefix sums
    and break the thin chains apart, so it is not done.
    """
    return f.shape[1] in LARGE and f.shape[0] not in LARGE


def _expand_matrix(expr: sp.Expr) -> sp.Expr:
    return factor_right(chains(expr, S.SYMMETRIC), expr.shape, _wide)


def _expand_scalar(expr: sp.Expr) -> sp.Expr:
    """Expand the argument of every trace into chains, so each trace is of a thin chain."""
    return normalize(sp.expand(expr))


@dataclass(frozen=True)
class StructuredFlow(LatexRepr):
    """The flow of `terms` with the moments replaced by their thin factors."""

    names: tuple[str, ...]
    noise: tuple[str, str]
    loss: sp.Expr
    dW_A: sp.Expr = field(repr=False)
    dW_B: sp.Expr = field(repr=False)

    def latex(self) -> str:
        """Both equations as an `aligned` block, long rows broken to fit a page."""
        return fit("\n".join([r"\begin{aligned}", rf"\frac{{dW_A}}{{dt}} &= {latex(self.dW_A)} \\",
                              rf"\frac{{dW_B}}{{dt}} &= {latex(self.dW_B)}", r"\end{aligned}"]))

    def __repr__(self) -> str:
        return f"StructuredFlow({' + '.join(self.names)}, noise_A={self.noise[0]}, noise_B={self.noise[1]})"

    def _caption(self) -> str:
        return f"Flow of {' + '.join(self.names)} in factored form ({self.noise[0]}/{self.noise[1]} noise)"


def structured_flow(terms: tuple[str, ...] | str = ("pos", "neg"), noise_A: str = "thin",
                    noise_B: str = "thin") -> StructuredFlow:
    """The gradient flow of `terms` in factored form (see the module docstring)."""
    flow = gradient_flow(terms)
    noise_substitution(noise_A, noise_B)  # validates the kinds
    return _structured(flow.terms, noise_A, noise_B)


@lru_cache(maxsize=64)
@disk_cached
def _structured(terms: tuple, noise_A: str, noise_B: str) -> StructuredFlow:
    # Keyed by the LossTerm objects, so a re-registered term is derived afresh.
    flow = _gradient_flow(terms)
    names = flow.names
    sub = factored_moments(noise_A, noise_B)
    noise = noise_substitution(noise_A, noise_B)
    # A user term may read A_xi directly: substitute the noise kind there as well.
    sub.update(noise)
    dA = _expand_matrix(flow.dW_A.xreplace(sub))
    dB = _expand_matrix(flow.dW_B.xreplace(sub))
    return StructuredFlow(names, (noise_A, noise_B), _expand_scalar(flow.loss.xreplace(sub)), dA, dB)


@derivation_section("structured", "The flow in factored form (no d×d moment is ever formed)")
def _derivation() -> list[tuple[str, str]]:
    out = [("moments", r"\Sigma_A = A\Sigma_z A^{\top} + A_\xi A_\xi^{\top},\quad C = A\Sigma_z B^{\top}"
                       r"\quad\text{(derived by the expectation step), substituted and expanded}")]
    for noise, text in ((("isotropic", "isotropic"), r"isotropic noise $A_\xi = \sigma_A I$, $B_\xi = \sigma_B I$"),
                        (("thin", "thin"), r"thin noise factors $A_\xi$ ($d_A\times k_A$), $B_\xi$")):
        out.append((f"flow, {text}", structured_flow(("pos", "neg"), *noise).latex()))
    return out
