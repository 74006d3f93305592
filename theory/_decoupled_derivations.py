r"""Sections of `derivations/` for the decoupled model, its closed forms and the CCA limit.

Each block is printed from an expression derived in `_decoupled` / `_closed_forms`;
nothing here is typed except the words around it.
"""

from __future__ import annotations

import sympy as sp

from . import _symbols as S
from ._closed_forms import (
    X0, balanced_ode, carrying_capacity, cca_fixed_point, dlog_kappa_split, dlog_q_parts, kappa_growth_law,
    logistic_solution, peak_time, positive_only_solution,
)
from ._decoupled import decoupled_flow, in_mode_parameters, mode_alpha, mode_gain, mode_rho, t
from ._derivations import derivation_section
from ._latex import latex


def _eq(lhs: str, rhs: sp.Expr) -> str:
    return rf"{lhs} = {latex(rhs)}"


@derivation_section("decoupled", "The decoupled model (THEORY §5): per-mode ODEs reduced from the matrix flow")
def _decoupled_section() -> list[tuple[str, str]]:
    aA, aB = mode_alpha()
    out = [
        ("aligned instance",
         r"A = \operatorname{diag}(a),\ B = \operatorname{diag}(b),\ A_\xi = \sigma_A I,\ B_\xi = \sigma_B I,\ "
         r"\Sigma_z = I,\ W_A = \operatorname{diag}(w_A),\ W_B = \operatorname{diag}(w_B)"
         r"\ \Longrightarrow\ \text{off-diagonal } \dot W = 0,\ \text{modes uncoupled}"),
        ("mode parameters",
         rf"g = {latex(mode_gain())},\quad \alpha_A = {latex(aA)},\quad \alpha_B = {latex(aB)},\quad "
         rf"\rho = {latex(mode_rho())}"),
    ]
    for terms in (("pos",), ("neg",), ("wd",), ("pos", "neg")):
        fl = decoupled_flow(terms)
        out.append((f"per-mode flow: {' + '.join(terms)}",
                    rf"\frac{{dw_A}}{{dt}} = {latex(in_mode_parameters(fl.dw_A))}, \qquad "
                    rf"\frac{{dw_B}}{{dt}} = {latex(in_mode_parameters(fl.dw_B))}"))
    fl = decoupled_flow(("pos", "neg", "wd"))
    out.append(("mode of M and of the loss",
                rf"q = \sigma_i(W_A C W_B^{{\top}}) = {latex(in_mode_parameters(fl.q))}, \qquad "
                rf"\ell = {latex(in_mode_parameters(fl.loss))}"))
    return out


@derivation_section("closed_forms", "Closed forms of the decoupled flow (dsolve)")
def _closed_forms_section() -> list[tuple[str, str]]:
    X = sp.Symbol("X")
    k0, ratio = kappa_growth_law()
    split = dlog_kappa_split(("pos", "neg"), balanced=True)
    split_u = dlog_kappa_split(("pos", "neg"), balanced=False)
    parts = dlog_q_parts(("pos", "neg"))
    pk = peak_time()
    return [
        ("balanced mode, full loss", _eq(r"\frac{dX}{dt}", balanced_ode(("pos", "neg")))
         + r",\qquad X = w_A^2 = w_B^2,\ \alpha = \alpha_A\alpha_B"),
        ("balanced mode, positive pairs + weight decay", _eq(r"\frac{dX}{dt}", balanced_ode(("pos", "wd")))),
        ("logistic solution (dsolve)", _eq("X(t)", logistic_solution())
         + rf",\qquad X_\infty = \lim_{{t\to\infty}} X(t) = {latex(carrying_capacity())}"),
        ("positive-only solution (dsolve)", _eq("X(t)", positive_only_solution())),
        ("condition-number law, positive pairs, common X_0",
         rf"\kappa(0) = \frac{{q_1(0)}}{{q_k(0)}} = {latex(k0)},\qquad "
         rf"\frac{{\kappa(t)}}{{\kappa(0)}} = {latex(ratio)}\quad (\mu \text{{ cancels}})"),
        ("d log q / dt by term",
         rf"\frac{{d\log q}}{{dt}} = \underbrace{{{latex(parts['pos'])}}}_{{\text{{positive pairs}}}}"
         rf"\ \underbrace{{- {latex(-parts['neg'])}}}_{{\text{{negative pairs}}}}"),
        ("d log kappa / dt split (aligned modes 1 = strongest, k = weakest)",
         rf"\frac{{d\log\kappa}}{{dt}} = \underbrace{{{latex(split_u['pos'])}}}_{{\text{{pos}}}} "
         rf"+ \underbrace{{{latex(split_u['neg'])}}}_{{\text{{neg}}}}"),
        ("the split, balanced",
         rf"\frac{{d\log\kappa}}{{dt}} = \underbrace{{{latex(split['pos'])}}}_{{\ge 0 \text{{ iff }} g_1 \ge g_k}} "
         rf"+ \underbrace{{{latex(split['neg'])}}}_{{\le 0 \text{{ iff }} \alpha_1 X_1 \ge \alpha_k X_k}}"),
        ("stage rates", rf"\text{{stage 1 }}(X_1, X_k \ll X_\infty):\ {latex(pk.stage1_rate)},\qquad "
         rf"\text{{stage 2 }}(X_1 = X_{{\infty,1}},\ X_k \ll X_{{\infty,k}}):\ {latex(pk.stage2_rate)}"),
        ("peak time, leading order (mode 1 saturating, mode k unsaturated)", _eq(r"\hat t^{*}", pk.leading)),
        ("peak time, first-order correction",
         rf"t^{{*}} - \hat t^{{*}} \approx \varepsilon\,\frac{{\partial t^{{*}}}}{{\partial\varepsilon}} "
         rf"= \lambda\alpha_k X_k(\hat t^{{*}})\cdot {latex(pk.sensitivity)}"
         r"\qquad(\varepsilon = \lambda\alpha_k X_k \text{, the weak mode's share of } d\log\kappa/dt)"),
    ]


@derivation_section("cca", "The equilibrium is CCA (THEORY §6)")
def _cca_section() -> list[tuple[str, str]]:
    c = cca_fixed_point()
    return [
        ("per-mode equilibrium", rf"w_A w_B = {latex(c.product)},\qquad \lambda q^{{*}} = \rho^2,\qquad "
                                 rf"\ell^{{*}} = {latex(in_mode_parameters(c.loss))}"
                                 rf" = -\frac{{\rho^2}}{{2\lambda}}"),
        ("CCA limit", rf"\operatorname{{eig}}_i(M^{{*}}) = {latex(c.eig)}\ (i \le m),\qquad "
                      rf"\kappa_\infty = {latex(c.kappa)},\qquad L^{{*}} = {latex(c.loss_total)}"),
        ("balance bound (C9)", rf"\kappa_\infty \le \frac{{1}}{{\rho_k^2}} = {latex(c.inv_rho2)}"
                               r"\quad\text{at the weakest mode } (a, b) = (a_k, b_k)"),
    ]


__all__ = ["X0", "S", "t"]
