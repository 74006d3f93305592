r"""LaTeX as a paper needs it: display environments, a complete document, notebook reprs.

Every block leaves here inside `equation` (numbered) or `equation*`, broken to fit the
text block of `\documentclass{article}` (`_latex_layout.fit`); the packages it needs are
`PACKAGES` (amsmath for `aligned`, `\operatorname`, `\text`; amssymb for `\mathbb`).
"""

from __future__ import annotations

from ._latex_layout import fit

#: What every block printed by this toolkit needs, and nothing more.
PACKAGES = ("amsmath", "amssymb")


def display(body: str, numbered: bool = True) -> str:
    r"""`body` (math, maybe an `aligned` block) in an `equation` environment, broken to fit."""
    env = "equation" if numbered else "equation*"
    return f"\\begin{{{env}}}\n{fit(body)}\n\\end{{{env}}}"


def preamble(title: str | None = None) -> str:
    """The lines before `\\begin{document}` of a complete article."""
    lines = [r"\documentclass{article}", rf"\usepackage{{{','.join(PACKAGES)}}}"]
    if title:
        lines += [rf"\title{{{title}}}", r"\date{}"]
    return "\n".join(lines)


def document(body: str, title: str | None = None) -> str:
    """A complete, compilable article around `body` (LaTeX text with display blocks)."""
    head = [preamble(title), r"\begin{document}"] + ([r"\maketitle"] if title else [])
    return "\n".join(head + [body.rstrip("\n"), r"\end{document}", ""])


def notebook_printing() -> None:
    r"""Make Jupyter show *every* SymPy expression in this toolkit's notation ($W_A^{\top}$,
    $\operatorname{tr}$), not SymPy's default `^{T}`: `sympy.init_printing` with our printer."""
    import sympy as sp

    from ._latex import latex

    # SymPy calls the printer with its own settings (mode=...) and adds the $ itself.
    sp.init_printing(latex_printer=lambda expr, **_settings: latex(expr), use_latex="mathjax", latex_mode="plain")


class LatexRepr:
    r"""Notebook rendering for a derived result with a `latex()` block: Jupyter shows the math.

    Subclasses provide `latex()` (one math block, no delimiters) and `_caption()`."""

    def latex(self) -> str:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def _caption(self) -> str:
        return type(self).__name__

    def _repr_latex_(self) -> str:
        return "$$\n" + fit(self.latex()) + "\n$$"

    def _repr_markdown_(self) -> str:
        return f"**{self._caption()}**\n\n$$\n{fit(self.latex())}\n$$\n"


__all__ = ["LatexRepr", "PACKAGES", "display", "document", "notebook_printing", "preamble"]
