"""A Hypothesis grammar of smooth scalar losses built from traces (issue 8).

Blocks are m×m matrices of the state and data: P = W_A Σ_A W_Aᵀ, R = W_B Σ_B W_Bᵀ,
M = W_A C W_Bᵀ, Mᵀ, W_A W_Aᵀ, differences and sums with I, inverses (P + I)⁻¹, (R + I)⁻¹ and
integer powers. A loss is a sum of one to three weighted atoms: traces of products of one
to three blocks, their squares and products, Frobenius norms, and smooth functions (log,
sqrt, real powers, exp, log det) of quantities that are positive by construction, so every
drawn loss is finite and smooth at every W.
"""

from __future__ import annotations

import sympy as sp
from hypothesis import strategies as st

from cdyn import theory

S = theory.symbols
nu = sp.Symbol("nu", positive=True)
I = sp.Identity(S.m)
P = S.W_A * S.Sigma_A * S.W_A.T
R = S.W_B * S.Sigma_B * S.W_B.T
M = S.W_A * S.C * S.W_B.T
BLOCKS = {
    "P": P, "R": R, "M": M, "Mᵀ": M.T, "W_AW_Aᵀ": S.W_A * S.W_A.T, "P−I": P - I, "M−I": M - I, "P−R": P - R,
    "P+M": P + M, "(P+I)⁻¹": (P + I).I, "(R+I)⁻¹": (R + I).I, "P²": P**2, "M³": M**3,
}
#: Positive semi-definite blocks: their traces and det(X + I) are positive.
PSD = {"P": P, "R": R, "W_AW_Aᵀ": S.W_A * S.W_A.T, "MMᵀ": M * M.T, "P²": P**2}
COEFFS = (sp.S.One, sp.Integer(-2), sp.Rational(1, 2), nu, -nu / 3)


@st.composite
def trace_monomial(draw) -> sp.Expr:
    names = draw(st.lists(st.sampled_from(sorted(BLOCKS)), min_size=1, max_size=3))
    return sp.Trace(sp.MatMul(*[BLOCKS[n] for n in names]) if len(names) > 1 else BLOCKS[names[0]])


@st.composite
def positive(draw) -> sp.Expr:
    X = PSD[draw(st.sampled_from(sorted(PSD)))]
    kind = draw(st.sampled_from(["trace+1", "det(X+I)", "frob²+1"]))
    if kind == "trace+1":
        return sp.Trace(X) + 1
    if kind == "det(X+I)":
        return sp.det(X + I)
    return theory.frobenius_sq(BLOCKS[draw(st.sampled_from(sorted(BLOCKS)))]) + 1


@st.composite
def atom(draw) -> sp.Expr:
    kind = draw(st.sampled_from(["trace", "trace²", "trace·trace", "log", "sqrt", "power", "exp", "frobenius",
                                 "logdet", "trace(trace·X)"]))
    if kind == "trace":
        return draw(trace_monomial())
    if kind == "trace²":
        return draw(trace_monomial()) ** 2
    if kind == "trace·trace":
        return draw(trace_monomial()) * draw(trace_monomial())
    if kind == "log":
        return sp.log(draw(positive()))
    if kind == "sqrt":
        return sp.sqrt(draw(positive()))
    if kind == "power":
        return draw(positive()) ** draw(st.sampled_from([sp.Rational(3, 2), sp.Rational(-1, 2), sp.Rational(1, 3)]))
    if kind == "exp":
        return sp.exp(-draw(positive()) / 4)
    if kind == "frobenius":
        return theory.frobenius(BLOCKS[draw(st.sampled_from(sorted(BLOCKS)))] + I)
    if kind == "logdet":
        return sp.log(sp.det(PSD[draw(st.sampled_from(sorted(PSD)))] + I))
    X = BLOCKS[draw(st.sampled_from(sorted(BLOCKS)))]
    return sp.Trace(draw(trace_monomial()) * X)  # a trace inside a trace


@st.composite
def losses(draw) -> sp.Expr:
    """A sum of one to three weighted atoms; it depends on W_A or W_B by construction."""
    n = draw(st.integers(1, 3))
    atoms = [draw(atom()) for _ in range(n)]
    total = sp.Add(*[draw(st.sampled_from(COEFFS)) * a for a in atoms])
    # Equal atoms with opposite weights cancel to a constant: keep the first atom alone then.
    return total if total.has(S.W_A, S.W_B) else atoms[0]
