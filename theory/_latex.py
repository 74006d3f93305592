"""LaTeX and Unicode rendering in the notation of THEORY.md ($W_A^\\top$, $\\operatorname{tr}$)."""

from __future__ import annotations

import sympy as sp
from sympy.printing.conventions import split_super_sub
from sympy.printing.latex import LatexPrinter
from sympy.printing.pretty.pretty_symbology import greek_unicode
from sympy.printing.str import StrPrinter

from ._latex_layout import fit


def _signed_terms(expr: sp.Expr) -> list[tuple[bool, sp.Expr]]:
    """Split a sum into (is_negative, |term|), positive terms first, stable otherwise."""
    args = expr.args if isinstance(expr, (sp.MatAdd, sp.Add)) else (expr,)
    out = []
    for a in args:
        neg = a.could_extract_minus_sign()
        if isinstance(a, sp.MatMul):
            coeff, mats = a.as_coeff_matrices()
            neg = sp.sympify(coeff, strict=True).could_extract_minus_sign()
            a = (-coeff if neg else coeff) * sp.MatMul(*mats) if len(mats) > 1 else (-coeff if neg else coeff) * mats[0]
        elif neg:
            a = -a
        out.append((neg, a))
    return sorted(out, key=lambda t: t[0])


class _Latex(LatexPrinter):
    def _print_Transpose(self, expr: sp.Transpose) -> str:
        base = self._print(expr.arg)
        if not isinstance(expr.arg, sp.MatrixSymbol):
            base = rf"\left({base}\right)"
        return rf"{base}^{{\top}}"

    def _print_Trace(self, expr: sp.Trace) -> str:
        return rf"\operatorname{{tr}}\left({self._print(expr.arg)}\right)"

    def _print_MatAdd(self, expr: sp.MatAdd) -> str:
        parts = []
        for i, (neg, term) in enumerate(_signed_terms(expr)):
            s = self._print(term)
            parts.append(("- " if neg else ("" if i == 0 else "+ ")) + s)
        return " ".join(parts)


class _Unicode(StrPrinter):
    def _print_Transpose(self, expr: sp.Transpose) -> str:
        base = self._print(expr.arg)
        return (base if isinstance(expr.arg, sp.MatrixSymbol) else f"({base})") + "ᵀ"

    def _print_Trace(self, expr: sp.Trace) -> str:
        return f"tr({self._print(expr.arg)})"

    def _print_MatMul(self, expr: sp.MatMul) -> str:
        coeff, mats = expr.as_coeff_matrices()
        body = " ".join(self.parenthesize(m, 60) for m in mats)
        if coeff == 1:
            return body
        if coeff == -1:
            return "-" + body
        return f"{self._print(coeff)} {body}"

    def _print_MatAdd(self, expr: sp.MatAdd) -> str:
        parts = []
        for i, (neg, term) in enumerate(_signed_terms(expr)):
            parts.append(("- " if neg else ("" if i == 0 else "+ ")) + self._print(term))
        return " ".join(parts)

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        return greek_name(expr.name)

    def _print_MatrixSymbol(self, expr: sp.MatrixSymbol) -> str:
        return greek_name(expr.name.replace("\\tilde{x}", "x̃"))


def _greek(word: str) -> str:
    """`nu` -> ν, `Sigma` -> Σ, `varepsilon` -> ε (SymPy's own table); anything else unchanged."""
    return greek_unicode.get(word) or (greek_unicode.get(word[3:], word) if word.startswith("var") else word)


def greek_name(name: str) -> str:
    """A symbol name as Unicode with the conventions SymPy's LaTeX printer uses for the same name:
    `nu` -> ν, `sigma_A` -> σ_A, `ep_nu` -> ep_ν, `kappa0` -> κ_0 (`_` subscripts, `^` superscripts)."""
    base, sups, subs = split_super_sub(name)
    out = _greek(base) + "".join("^" + _greek(s) for s in sups)
    return out + ("_" + ",".join(_greek(s) for s in subs) if subs else "")


def latex(expr: sp.Expr) -> str:
    """LaTeX of one expression."""
    return _Latex({"mat_symbol_style": "plain"}).doprint(expr)


def unicode(expr: sp.Expr) -> str:
    """One-line Unicode of one expression, for terminals."""
    return _Unicode().doprint(expr)


def weighted_sum(pairs: list[tuple[sp.Expr, sp.Expr]], render) -> str:
    """Render $\\sum_i w_i L_i$ in registration order, e.g. `L_pos + λ L_neg`."""
    out = []
    for weight, expr in pairs:
        w = "" if weight == 1 else render(weight) + (r" \cdot " if render is latex else " · ")
        body = render(expr)
        if isinstance(expr, sp.Add) and weight != 1:
            body = (r"\left(" + body + r"\right)") if render is latex else f"({body})"
        out.append(w + body)
    return " + ".join(out).replace("+ -", "- ")


def latex_flow(pairs: list[tuple[sp.Expr, sp.Expr]], dW_A: sp.Expr, dW_B: sp.Expr) -> str:
    """The loss and both flow equations as one `aligned` block, long rows broken to fit a page."""
    return fit("\n".join([
        r"\begin{aligned}",
        rf"L &= {weighted_sum(pairs, latex)} \\",
        rf"\frac{{dW_A}}{{dt}} &= {latex(dW_A)} \\",
        rf"\frac{{dW_B}}{{dt}} &= {latex(dW_B)}",
        r"\end{aligned}",
    ]))
