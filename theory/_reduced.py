r"""The exact reduced ODE of THEORY §8, derived by substitution and projection.

With isotropic noise $A_\xi = \sigma_A I$, write $A = U_A T_A$ with $U_A$ ($d_A\times r_A$) an
orthonormal basis of $\operatorname{range} A$ and $T_A = U_A^\top A$, and split

$$W_A = X_A U_A^\top + Y_A N_A^\top ,$$

where $N_A$ ($d_A\times q_A$, $q_A \le m$) is an orthonormal basis of the row space of the
initial complement $W_A(0)(I - U_A U_A^\top)$. The identity splits as
$I = U_A U_A^\top + N_A N_A^\top + P_A$ with $P_A$ the projector on the rest, so
$U_A^\top U_A = I$, $N_A^\top N_A = I$, $U_A^\top N_A = 0$, $U_A^\top P_A = N_A^\top P_A = 0$, $P_A^2 = P_A$, and
the data enter through $T_A\Sigma_z T_A^\top = \bar S_A - \sigma_A^2 I$ (i.e. $\bar S_A = S_A + \sigma_A^2 I$) and
$T_A\Sigma_z T_B^\top = \tilde C$. Substituting into the flow and projecting,
$\dot X_A = \dot W_A U_A$ and $\dot Y_A = \dot W_A N_A$, every $d$ disappears. The derivation
also *proves closure*: $\dot W_A = \dot X_A U_A^\top + \dot Y_A N_A^\top$ exactly, so $W_A$ stays in
the span of $U_A$ and $N_A$ for all time.

With $G_A = Y_A Y_A^\top$ the $Y$ equation becomes THEORY's $\dot G_A = -\lambda\sigma_A^2(H_B G_A +
G_A H_B)$; `check_against_theory` confirms, symbolically, that the derived equations are
the ones stated in THEORY §8. The $Y$ form is the one to integrate: it has the same
size ($q_A \le m$ columns), keeps $G_A$ positive semi-definite by construction, and
reconstructs $W_A(t) = X_A(t)U_A^\top + Y_A(t)N_A^\top$ exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import sympy as sp
from sympy import MatrixSymbol

from ._diskcache import disk_cached
from . import _symbols as S
from ._chains import Chains, build, chains, combine, equal, multiply, rewrite, symbols_in, t_chain
from ._content import compact
from ._derivations import derivation_section
from ._flow import _gradient_flow, gradient_flow
from ._latex import latex
from ._latex_document import LatexRepr
from ._latex_layout import fit
from ._structured import factored_moments, noise_substitution, sigma_A, sigma_B

r_A, r_B, q_A, q_B = sp.symbols("r_A r_B q_A q_B", integer=True, positive=True)
U_A, U_B = MatrixSymbol("U_A", S.d_A, r_A), MatrixSymbol("U_B", S.d_B, r_B)
N_A, N_B = MatrixSymbol("N_A", S.d_A, q_A), MatrixSymbol("N_B", S.d_B, q_B)
T_A, T_B = MatrixSymbol("T_A", r_A, S.r), MatrixSymbol("T_B", r_B, S.r)
X_A, X_B = MatrixSymbol("X_A", S.m, r_A), MatrixSymbol("X_B", S.m, r_B)
Y_A, Y_B = MatrixSymbol("Y_A", S.m, q_A), MatrixSymbol("Y_B", S.m, q_B)
P_A, P_B = MatrixSymbol("P_A", S.d_A, S.d_A), MatrixSymbol("P_B", S.d_B, S.d_B)
S_A, S_B = MatrixSymbol("S_A", r_A, r_A), MatrixSymbol("S_B", r_B, r_B)
Sb_A, Sb_B = MatrixSymbol(r"\bar{S}_A", r_A, r_A), MatrixSymbol(r"\bar{S}_B", r_B, r_B)
Ct = MatrixSymbol(r"\tilde{C}", r_A, r_B)
G_A, G_B = MatrixSymbol("G_A", S.m, S.m), MatrixSymbol("G_B", S.m, S.m)

SYMMETRIC = (*S.SYMMETRIC, S_A, S_B, Sb_A, Sb_B, G_A, G_B, P_A, P_B)
#: The reduced state and the constants its equations may read.
STATE = (X_A, Y_A, X_B, Y_B)
CONSTANTS = (Sb_A, Sb_B, Ct)

#: Orthonormality of the bases and the projectors, and the names of the small data products.
RULES: dict = {
    (U_A.T, U_A): (), (N_A.T, N_A): (), (U_A.T, N_A): None, (U_A.T, P_A): None, (N_A.T, P_A): None, (P_A, P_A): (P_A,),
    (U_B.T, U_B): (), (N_B.T, N_B): (), (U_B.T, N_B): None, (U_B.T, P_B): None, (N_B.T, P_B): None, (P_B, P_B): (P_B,),
    (T_A, S.Sigma_z, T_A.T): {(Sb_A,): sp.S.One, (): -sigma_A**2},
    (T_B, S.Sigma_z, T_B.T): {(Sb_B,): sp.S.One, (): -sigma_B**2},
    (T_A, S.Sigma_z, T_B.T): (Ct,),
}


class NotReducible(ValueError):
    """The flow of these terms does not close on the reduced state."""


@dataclass(frozen=True)
class ReducedFlow(LatexRepr):
    """$\\dot X_A, \\dot Y_A, \\dot X_B, \\dot Y_B$ (integrated) and the $G$ form of THEORY §8."""

    names: tuple[str, ...]
    dX_A: sp.Expr = field(repr=False)
    dY_A: sp.Expr = field(repr=False)
    dX_B: sp.Expr = field(repr=False)
    dY_B: sp.Expr = field(repr=False)
    dX_A_G: sp.Expr = field(repr=False)
    dX_B_G: sp.Expr = field(repr=False)
    dG_A: sp.Expr = field(repr=False)
    dG_B: sp.Expr = field(repr=False)
    M: sp.Expr = field(repr=False)

    def latex(self) -> str:
        """THEORY §8's form ($\\dot X$, $\\dot G$ and $M$) as an `aligned` block broken to fit a page."""
        rows = [(r"\dot X_A", self.dX_A_G), (r"\dot X_B", self.dX_B_G), (r"\dot G_A", self.dG_A),
                (r"\dot G_B", self.dG_B), ("M", self.M)]
        return fit("\\begin{aligned}\n" + " \\\\\n".join(f"{k} &= {latex(v)}" for k, v in rows) + "\n\\end{aligned}")

    def __repr__(self) -> str:
        return f"ReducedFlow({' + '.join(self.names)}: state X_A, Y_A, X_B, Y_B)"

    def _caption(self) -> str:
        return f"Reduced flow of {' + '.join(self.names)} (THEORY §8, isotropic noise)"

    def outputs(self) -> dict[str, sp.Expr]:
        r"""The integrated equations, in right-Horner form with each sum's scalar content taken out (fewest
        products to compile: $\dot X_A$ and $\dot Y_A$ then share one $H_B$, see `_content.compact`)."""
        return {k: compact(chains(getattr(self, k), SYMMETRIC), getattr(self, k).shape)
                for k in ("dX_A", "dY_A", "dX_B", "dY_B")}


def substitution() -> dict:
    """$A \\to U_A T_A$, $W_A \\to X_A U_A^\\top + Y_A N_A^\\top$, $I \\to U_A U_A^\\top + N_A N_A^\\top + P_A$."""
    return {S.A: U_A * T_A, S.B: U_B * T_B, S.W_A: X_A * U_A.T + Y_A * N_A.T, S.W_B: X_B * U_B.T + Y_B * N_B.T,
            sp.Identity(S.d_A): U_A * U_A.T + N_A * N_A.T + P_A, sp.Identity(S.d_B): U_B * U_B.T + N_B * N_B.T + P_B}


def _substituted(expr: sp.Expr) -> Chains:
    """The expression with isotropic moments and the split substituted, in chain form."""
    moments = factored_moments("isotropic", "isotropic")
    noise = noise_substitution("isotropic", "isotropic")
    e = expr.xreplace({**moments, **noise}).xreplace(substitution())
    return rewrite(chains(e, SYMMETRIC), RULES, SYMMETRIC)


def _closed(chs: Chains, what: str, allowed: set) -> Chains:
    extra = symbols_in(chs) - allowed
    if extra:
        names = sorted(s if len(s) <= 60 else s[:57] + "..." for s in map(str, extra))
        raise NotReducible(f"{what} depends on {names}: the flow does not close")
    return chs


def _to_G(chs: Chains) -> Chains:
    return rewrite(chs, {(Y_A, Y_A.T): (G_A,), (Y_B, Y_B.T): (G_B,)}, SYMMETRIC)


def reduced_flow(terms: tuple[str, ...] | str = ("pos", "neg")) -> ReducedFlow:
    """Derive the reduced ODE of `terms`; `NotReducible` if it does not close."""
    return _reduced(gradient_flow(terms).terms)


@lru_cache(maxsize=32)
@disk_cached
def _reduced(terms: tuple) -> ReducedFlow:
    # Keyed by the LossTerm objects, so a re-registered term is derived afresh.
    flow = _gradient_flow(terms)
    names = flow.names
    small = {X_A, X_B, Y_A, Y_B, *CONSTANTS}
    out: dict[str, Chains] = {}
    for view, dW, U, N in (("A", flow.dW_A, U_A, N_A), ("B", flow.dW_B, U_B, N_B)):
        dW_chains = _substituted(dW)
        dX = _closed(rewrite(multiply(dW_chains, right=(U,)), RULES, SYMMETRIC), f"dX_{view}", small)
        dY = _closed(rewrite(multiply(dW_chains, right=(N,)), RULES, SYMMETRIC), f"dY_{view}", small)
        # Closure: the flow never leaves span(U, N), i.e. dW = dX U^T + dY N^T exactly.
        rest = combine((1, dW_chains), (-1, multiply(dX, right=(U.T,))), (-1, multiply(dY, right=(N.T,))))
        if rest:
            raise NotReducible(f"dW_{view} leaves the span of U_{view}, N_{view}: the flow does not close")
        out[f"dX_{view}"], out[f"dY_{view}"] = dX, dY
    g_allowed = {X_A, X_B, G_A, G_B, *CONSTANTS}
    forms = {}
    for view, Y in (("A", Y_A), ("B", Y_B)):
        dY = out[f"dY_{view}"]
        # d(Y Yᵀ)/dt = Ẏ Yᵀ + Y Ẏᵀ
        dYT = {t_chain(ch, SYMMETRIC): c for ch, c in dY.items()}
        dG = combine((1, multiply(dY, right=(Y.T,))), (1, multiply(dYT, left=(Y,))))
        forms[f"dG_{view}"] = _closed(_to_G(dG), f"dG_{view}", g_allowed)
        forms[f"dX_{view}_G"] = _closed(_to_G(out[f"dX_{view}"]), f"dX_{view} (G form)", g_allowed)
    m_shape = (S.m, S.m)
    M = _closed(_substituted(S.W_A * S.C * S.W_B.T), "M", small)
    return ReducedFlow(
        names,
        build(out["dX_A"], X_A.shape), build(out["dY_A"], Y_A.shape),
        build(out["dX_B"], X_B.shape), build(out["dY_B"], Y_B.shape),
        build(forms["dX_A_G"], X_A.shape), build(forms["dX_B_G"], X_B.shape),
        build(_sym(forms["dG_A"]), m_shape), build(_sym(forms["dG_B"]), m_shape),
        build(M, m_shape),
    )


#: The step size of gradient descent.
eta = sp.Symbol("eta", positive=True)


def reduced_gd_step(terms: tuple[str, ...] | str = ("pos", "neg")) -> dict:
    r"""One gradient-descent step $W \leftarrow W + \eta\,\dot W(W)$ on the reduced state.

    The derivation of `reduced_flow` proves $\dot W_A = \dot X_A U_A^\top + \dot Y_A N_A^\top$
    *as an identity in the state*, so for any step $\eta$

    $$W_A + \eta\dot W_A = (X_A + \eta\dot X_A)U_A^\top + (Y_A + \eta\dot Y_A)N_A^\top :$$

    the GD map keeps $W_A$ in the span of $U_A, N_A$, and stepping $(X, Y)$ by the reduced
    right-hand side is *exactly* full-form GD. The step is linear in the increment because
    $(X, Y)$ enter $W$ linearly. The $G$ form of THEORY §8 is not stepped this way:
    $G_A' = (Y_A + \eta\dot Y_A)(Y_A + \eta\dot Y_A)^\top = G_A + \eta\dot G_A + \eta^2\dot Y_A\dot Y_A^\top$,
    so $G_A + \eta\dot G_A$ is off by $O(\eta^2)$ per step.

    Returns `{X_A: X_A + eta*dX_A, Y_A: ..., X_B: ..., Y_B: ...}` (`eta` is `theory._reduced.eta`).
    """
    red = reduced_flow(terms)
    return {X_A: X_A + eta * red.dX_A, Y_A: Y_A + eta * red.dY_A,
            X_B: X_B + eta * red.dX_B, Y_B: Y_B + eta * red.dY_B}


def _sym(chs: Chains) -> Chains:
    return rewrite(chs, {}, SYMMETRIC)


def theory_statement() -> dict[str, sp.Expr]:
    r"""THEORY §8 as written there, for `terms=("pos", "neg")`."""
    SbA = S_A + sigma_A**2 * sp.Identity(r_A)
    SbB = S_B + sigma_B**2 * sp.Identity(r_B)
    H_A = X_A * SbA * X_A.T + sigma_A**2 * G_A
    H_B = X_B * SbB * X_B.T + sigma_B**2 * G_B
    lam = S.lam
    return {
        "dX_A": X_B * Ct.T - lam * H_B * X_A * SbA,
        "dX_B": X_A * Ct - lam * H_A * X_B * SbB,
        "dG_A": -lam * sigma_A**2 * (H_B * G_A + G_A * H_B),
        "dG_B": -lam * sigma_B**2 * (H_A * G_B + G_B * H_A),
        "M": X_A * Ct * X_B.T,
    }


def unbar() -> dict:
    """$\\bar S_A \\to S_A + \\sigma_A^2 I$: from the integrated constants to THEORY's notation."""
    return {Sb_A: S_A + sigma_A**2 * sp.Identity(r_A), Sb_B: S_B + sigma_B**2 * sp.Identity(r_B)}


def check_against_theory(stated: dict[str, sp.Expr] | None = None) -> dict[str, bool]:
    """Whether each derived equation equals THEORY §8's statement (exact, symbolic)."""
    red = reduced_flow(("pos", "neg"))
    stated = theory_statement() if stated is None else stated
    derived = {"dX_A": red.dX_A_G, "dX_B": red.dX_B_G, "dG_A": red.dG_A, "dG_B": red.dG_B, "M": red.M}
    return {k: equal(derived[k].xreplace(unbar()), stated[k], SYMMETRIC) for k in stated}


@derivation_section("reduced", "The exact reduced ODE of THEORY §8 (isotropic noise)")
def _derivation() -> list[tuple[str, str]]:
    red = reduced_flow(("pos", "neg"))
    ok = check_against_theory()
    verdict = r",\ ".join(rf"\dot {k[1:]}" if k.startswith("d") else k for k, v in ok.items() if v)
    return [
        ("substitution", r"A = U_A T_A,\quad W_A = X_A U_A^{\top} + Y_A N_A^{\top},\quad "
                         r"I = U_A U_A^{\top} + N_A N_A^{\top} + P_A,\quad "
                         r"T_A\Sigma_z T_A^{\top} = \bar{S}_A - \sigma_A^2 I,\quad T_A\Sigma_z T_B^{\top} = \tilde{C}"),
        ("integrated form", rf"\begin{{aligned}}\dot X_A &= {latex(red.dX_A)} \\ \dot Y_A &= {latex(red.dY_A)} \\ "
                            rf"\dot X_B &= {latex(red.dX_B)} \\ \dot Y_B &= {latex(red.dY_B)}\end{{aligned}}"),
        ("THEORY §8 form, G = Y Yᵀ", rf"\begin{{aligned}}\dot X_A &= {latex(red.dX_A_G)} \\ "
                                     rf"\dot G_A &= {latex(red.dG_A)} \\ M &= {latex(red.M)}\end{{aligned}}"),
        ("check", rf"\text{{equal to THEORY }}\S 8\text{{ as stated (symbolic, exact): }} {verdict}"),
    ]
