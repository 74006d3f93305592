r"""The decoupled model of THEORY §5, *derived* from the matrix flow.

Take $n$ explicit modes: $A = \operatorname{diag}(a)$, $B = \operatorname{diag}(b)$,
$A_\xi = \sigma_A I$, $B_\xi = \sigma_B I$, $\Sigma_z = I$ and the aligned
initialisation $W_A = \operatorname{diag}(w_A)$, $W_B = \operatorname{diag}(w_B)$. The
moments $\Sigma_A, \Sigma_B, C$ are substituted from the expectation step and the flow
of each registered term is expanded entry by entry. SymPy then *shows* that

* every off-diagonal entry of $\dot W_A, \dot W_B$ is $0$ (the aligned form is invariant),
* the $i$-th diagonal entry involves mode $i$ only, and is the same function for every mode,

so the flow splits into independent per-mode ODEs. Orthogonal bases
($A = U_A\,\mathrm{diag}(a)V^\top$, $W_A = P\,\mathrm{diag}(w_A)U_A^\top$, $d \ge r$) only
rotate this picture; `tests/test_decoupled.py` checks the reduction against the matrix
flow on such instances. For `("pos", "neg")` the result is

$$\dot w_A = g\,w_B - \lambda\,\alpha_A\alpha_B\,w_A w_B^2,\qquad
  \dot w_B = g\,w_A - \lambda\,\alpha_A\alpha_B\,w_B w_A^2,$$

with $g = ab$, $\alpha_A = a^2 + \sigma_A^2$, $\alpha_B = b^2 + \sigma_B^2$.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import sympy as sp
from sympy import MatrixSymbol

from . import _symbols as S
from ._diskcache import disk_cached
from ._expectation import view_moments
from ._flow import gradient_flow
from ._latex import latex, unicode
from ._latex_document import LatexRepr

#: One mode's symbols (the generic mode the per-mode ODEs are written in).
a, b = sp.symbols("a b", positive=True)
sigma_A, sigma_B = sp.symbols("sigma_A sigma_B", nonnegative=True)
w_A, w_B = sp.symbols("w_A w_B", real=True)
t = sp.Symbol("t", nonnegative=True)
MODE_SYMBOLS = (a, b, sigma_A, sigma_B, w_A, w_B)

#: The mode's parameters the ODEs turn out to depend on: $g = ab$, $\alpha_A = a^2+\sigma_A^2$, $\alpha_B$.
g, alpha_A, alpha_B = sp.symbols("g alpha_A alpha_B", positive=True)

#: Number of explicit modes used for the reduction: two are enough to see that no term
#: couples modes (a coupling would show as a mode-2 symbol in a mode-1 entry).
N_MODES = 2


def _indexed(i: int) -> dict[sp.Symbol, sp.Symbol]:
    """Mode-i copies of the per-mode symbols (the noise levels are shared by all modes)."""
    return {s: sp.Symbol(f"{s.name}_{i + 1}", **s.assumptions0) for s in (a, b, w_A, w_B)}


def _substitution(n: int) -> tuple[dict, dict[MatrixSymbol, sp.Matrix]]:
    modes = [_indexed(i) for i in range(n)]
    dims = {S.d_A: n, S.d_B: n, S.r: n, S.m: n, S.k_A: n, S.k_B: n}
    diag = {
        S.A: sp.diag(*[md[a] for md in modes]),
        S.B: sp.diag(*[md[b] for md in modes]),
        S.A_xi: sigma_A * sp.eye(n),
        S.B_xi: sigma_B * sp.eye(n),
        S.Sigma_z: sp.eye(n),
        S.W_A: sp.diag(*[md[w_A] for md in modes]),
        S.W_B: sp.diag(*[md[w_B] for md in modes]),
    }
    return dims, diag


def explicit_aligned(expr: sp.Expr, n: int = N_MODES) -> sp.Matrix | sp.Expr:
    """`expr` (in $W_A, W_B$, data and moment symbols) on the explicit aligned diagonal instance."""
    mom = view_moments()
    named = {S.Sigma_A: mom[(S.x_A, S.x_A)], S.Sigma_B: mom[(S.x_B, S.x_B)], S.C: mom[(S.x_A, S.x_B)]}
    dims, diag = _substitution(n)
    out = expr.xreplace(named).xreplace(dims)
    out = out.xreplace({MatrixSymbol(k.name, *(sp.sympify(s, strict=True).xreplace(dims) for s in k.shape)): sp.ImmutableMatrix(v)
                        for k, v in diag.items()}).doit()
    if isinstance(out, sp.MatrixExpr) and not isinstance(out, sp.MatrixBase):
        out = out.as_explicit()
    if isinstance(out, sp.MatrixBase):
        return out.applyfunc(sp.expand) if out.shape != (1, 1) else sp.expand(out[0, 0])
    return sp.expand(out)


def _per_mode(mat: sp.Matrix, what: str) -> sp.Expr:
    """Check `mat` is diagonal with uncoupled, identical entries; return mode 1's as a generic mode."""
    n = mat.shape[0]
    modes = [_indexed(i) for i in range(n)]
    for i in range(n):
        for j in range(n):
            if i != j and sp.simplify(mat[i, j]) != 0:
                raise ValueError(f"{what}: the aligned diagonal form is not invariant (entry {i},{j} = {mat[i, j]})")
    generic = []
    for i in range(n):
        others = {s for k, md in enumerate(modes) if k != i for s in md.values()} - set(modes[i].values())
        if mat[i, i].free_symbols & others:
            raise ValueError(f"{what}: mode {i + 1} is coupled to other modes")
        generic.append(mat[i, i].xreplace({v: k for k, v in modes[i].items()}))
    if any(sp.expand(gi - generic[0]) != 0 for gi in generic[1:]):
        raise ValueError(f"{what}: modes obey different equations")
    return sp.factor_terms(sp.collect(generic[0], [S.lam, S.mu]))


@dataclass(frozen=True, repr=False)
class DecoupledFlow(LatexRepr):
    r"""Per-mode ODEs $(\dot w_A, \dot w_B)$ of a set of terms, split by term, with $q$ and the loss."""

    terms: tuple[str, ...]
    dw_A: sp.Expr
    dw_B: sp.Expr
    parts_A: dict[str, sp.Expr] = field(repr=False)
    parts_B: dict[str, sp.Expr] = field(repr=False)
    #: The mode's singular value of $M = W_A C W_B^\top$ (signed): $q = g\,w_A w_B$.
    q: sp.Expr = field(repr=False)
    #: The mode's share of the population loss.
    loss: sp.Expr = field(repr=False)
    #: The mode's canonical correlation, from $K = \Sigma_A^{-1/2} C \Sigma_B^{-1/2}$.
    rho: sp.Expr = field(repr=False)

    def latex(self) -> str:
        r"""LaTeX (an `aligned` block) of the per-mode flow, $q$ and the mode's loss."""
        return (rf"\begin{{aligned}}\frac{{dw_A}}{{dt}} &= {latex(self.dw_A)} \\ "
                rf"\frac{{dw_B}}{{dt}} &= {latex(self.dw_B)} \\ "
                rf"q &= {latex(self.q)} \\ "
                rf"\ell &= {latex(self.loss)}\end{{aligned}}")

    def _caption(self) -> str:
        return f"Per-mode flow of {' + '.join(self.terms)} (THEORY §5)"

    def pretty(self) -> str:
        """Unicode rendering for a terminal."""
        return "\n".join([f"dw_A/dt = {unicode(self.dw_A)}", f"dw_B/dt = {unicode(self.dw_B)}",
                          f"q       = {unicode(self.q)}", f"ℓ       = {unicode(self.loss)}"])

    def __repr__(self) -> str:
        return f"DecoupledFlow({' + '.join(self.terms)}: per-mode ODEs of w_A, w_B; .pretty() shows them)"


@lru_cache(maxsize=16)
@disk_cached
def decoupled_flow(terms: tuple[str, ...] = ("pos", "neg")) -> DecoupledFlow:
    """Reduce the matrix flow of `terms` on the aligned diagonal instance to one mode's ODEs."""
    terms = tuple(terms)
    parts_A, parts_B = {}, {}
    for name in terms:
        fl = gradient_flow((name,))
        parts_A[name] = _per_mode(explicit_aligned(fl.dW_A), f"term {name!r}, dW_A")
        parts_B[name] = _per_mode(explicit_aligned(fl.dW_B), f"term {name!r}, dW_B")
    full = gradient_flow(terms)
    dw_A = _per_mode(explicit_aligned(full.dW_A), "dW_A")
    dw_B = _per_mode(explicit_aligned(full.dW_B), "dW_B")
    # The per-term parts must add up to the whole (they are reduced separately).
    for total, parts in ((dw_A, parts_A), (dw_B, parts_B)):
        if sp.expand(total - sp.Add(*parts.values())) != 0:
            raise ArithmeticError("per-term reductions do not add up to the full flow")
    M = S.W_A * S.C * S.W_B.T
    q = _per_mode(explicit_aligned(M), "M")
    loss_n = explicit_aligned(full.loss)
    loss = _split_sum(loss_n)
    return DecoupledFlow(terms, dw_A, dw_B, parts_A, parts_B, q, loss, mode_rho())


def _split_sum(total: sp.Expr, n: int = N_MODES) -> sp.Expr:
    """Write a scalar sum over modes as $\\sum_i \\ell(\\text{mode } i)$ and return $\\ell$."""
    modes = [_indexed(i) for i in range(n)]
    pieces = [sp.S.Zero] * n
    for term in sp.Add.make_args(sp.expand(total)):
        owner = [i for i, md in enumerate(modes) if term.free_symbols & set(md.values())]
        if len(owner) != 1:
            raise ValueError(f"loss: term {term} couples modes")
        pieces[owner[0]] += term
    generic = [p.xreplace({v: k for k, v in modes[i].items()}) for i, p in enumerate(pieces)]
    if any(sp.expand(g - generic[0]) != 0 for g in generic[1:]):
        raise ValueError("loss: modes contribute different functions")
    return sp.factor_terms(sp.collect(generic[0], [S.lam, S.mu]))


@lru_cache(maxsize=1)
@disk_cached
def mode_rho() -> sp.Expr:
    r"""$\rho$ of one mode: the diagonal of $K = \Sigma_A^{-1/2} C \Sigma_B^{-1/2}$ on the diagonal instance."""
    mom = view_moments()
    SA = explicit_aligned(mom[(S.x_A, S.x_A)])
    SB = explicit_aligned(mom[(S.x_B, S.x_B)])
    C = explicit_aligned(mom[(S.x_A, S.x_B)])
    # Diagonal and positive definite (σ > 0 or a, b > 0): the inverse square root is entry-wise.
    inv_sqrt = lambda D: sp.diag(*[1 / sp.sqrt(D[i, i]) for i in range(D.shape[0])])  # noqa: E731
    for D in (SA, SB):
        if not D.is_diagonal():
            raise ArithmeticError("Σ is not diagonal on the aligned instance")
    K = inv_sqrt(SA) * C * inv_sqrt(SB)
    return sp.simplify(_per_mode(K, "K"))


def mode_gain() -> sp.Expr:
    """$g = ab$: the mode's singular value of $C$ (derived: $q = g\\,w_A w_B$)."""
    return sp.factor(decoupled_flow(("pos",)).q / (w_A * w_B))


def mode_alpha() -> tuple[sp.Expr, sp.Expr]:
    r"""$(\alpha_A, \alpha_B) = (a^2+\sigma_A^2,\ b^2+\sigma_B^2)$: the mode's variances, from $\Sigma_A, \Sigma_B$."""
    mom = view_moments()
    out = []
    for key, what in (((S.x_A, S.x_A), "Sigma_A"), ((S.x_B, S.x_B), "Sigma_B")):
        out.append(sp.factor(_per_mode(explicit_aligned(mom[key]), what)))
    return out[0], out[1]


def in_mode_parameters(expr: sp.Expr) -> sp.Expr:
    r"""Rewrite a per-mode rational expression in $g, \alpha_A, \alpha_B$ (checked by substituting back)."""
    aA, aB = mode_alpha()
    gain = mode_gain()

    def coeff(c: sp.Expr) -> sp.Expr:
        return sp.factor(c).xreplace({aA: alpha_A, aB: alpha_B}).subs(gain, g)

    def poly(e: sp.Expr) -> sp.Expr:
        gens = [x for x in (w_A, w_B, S.lam, S.mu, t) if x in e.free_symbols]
        if not gens:
            return coeff(e)
        p = sp.Poly(sp.expand(e), *gens)
        return sp.Add(*[coeff(c) * sp.Mul(*[x**k for x, k in zip(gens, mon)]) for mon, c in p.terms()])

    num, den = sp.fraction(sp.cancel(sp.together(expr)))
    out = sp.factor_terms(sp.collect(poly(num) / poly(den), [S.lam, S.mu]))
    if out.free_symbols & {a, b, sigma_A, sigma_B}:
        raise ValueError(f"cannot write {expr} in g, alpha_A, alpha_B")
    back = out.xreplace({g: gain, alpha_A: aA, alpha_B: aB})
    if sp.simplify(back - expr) != 0:
        raise ArithmeticError(f"rewriting {expr} in mode parameters changed it")
    return out
