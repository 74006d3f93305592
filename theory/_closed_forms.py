r"""Closed forms of the decoupled model (THEORY §5–§7), found by `sympy.dsolve` and `solve`.

Everything starts from the per-mode ODEs that `decoupled_flow` *derives* from the matrix
flow. With balanced initialisation $w_A = w_B = w$ (the flow preserves it: checked) put
$X = w^2$; then, with $\alpha = \alpha_A\alpha_B$,

$$\dot X = 2gX - 2\lambda\alpha X^2 - 2\mu X .$$

* full loss ($\mu = 0$): a logistic, $X(t) = \dfrac{X_0\, g\, e^{2gt}}{g + \lambda\alpha X_0 (e^{2gt}-1)}$, $q = gX \to \rho^2/\lambda$;
* positive pairs only: $X(t) = X_0 e^{2(g-\mu)t}$, so with a common $X_0$,
  $\kappa(t) = \kappa(0)\,e^{2(g_1 - g_k)t}$ — $\mu$ cancels;
* $\tfrac{d}{dt}\log\kappa$ splits term by term; balanced, the positive part is
  $2(g_1 - g_k)$ and the negative part $-2\lambda(\alpha_1 X_1 - \alpha_k X_k)$;
* the peak of $\kappa$ (stage boundary) and its leading-order prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from . import _symbols as S
from ._diskcache import disk_cached
from ._decoupled import alpha_A, alpha_B, decoupled_flow, g, in_mode_parameters, mode_rho, t, w_A, w_B

X0 = sp.Symbol("X_0", positive=True)
X = sp.Symbol("X", positive=True)
alpha = sp.Symbol("alpha", positive=True)
_w = sp.Symbol("w", positive=True)


def _mode(expr: sp.Expr, idx: str) -> sp.Expr:
    """Copy of a one-mode expression for mode `idx` ("1": strongest, "k": weakest)."""
    return expr.xreplace({g: sp.Symbol(f"g_{idx}", positive=True), alpha: sp.Symbol(f"alpha_{idx}", positive=True),
                          X: sp.Symbol(f"X_{idx}", positive=True)})


def _sym(name: str) -> sp.Symbol:
    return sp.Symbol(name, positive=True)


def mode_symbols(idx: str) -> dict[str, sp.Symbol]:
    """The symbols `g`, `alpha`, `X` of mode `idx` as they appear in the two-mode closed forms."""
    return {"g": _mode(g, idx), "alpha": _mode(alpha, idx), "X": _mode(X, idx)}


@lru_cache(maxsize=8)
@disk_cached
def balanced_ode(terms: tuple[str, ...] = ("pos", "neg")) -> sp.Expr:
    r"""$\dot X$ for $X = w_A^2 = w_B^2$, after checking that the flow keeps $w_A = w_B$."""
    fl = decoupled_flow(tuple(terms))
    dA, dB = in_mode_parameters(fl.dw_A), in_mode_parameters(fl.dw_B)
    bal = {w_A: _w, w_B: _w}
    if sp.expand(dA.xreplace(bal) - dB.xreplace(bal)) != 0:
        raise ArithmeticError(f"{terms}: the flow does not preserve balance w_A = w_B")
    dX = sp.expand(2 * _w * dA.xreplace(bal)).subs(_w, sp.sqrt(X))
    return sp.collect(sp.expand(dX.subs(alpha_A * alpha_B, alpha)), X)


def _dsolve(rhs: sp.Expr) -> sp.Expr:
    Xf = sp.Function("X")
    sol = sp.dsolve(sp.Eq(Xf(t).diff(t), rhs.subs(X, Xf(t))), Xf(t), ics={Xf(0): X0}).rhs
    # Normal form: split exp(a + log b) = b e^a, then cancel as a rational function of e^{ct}.
    sol = sp.powsimp(sp.expand(sol, power_exp=True, mul=True, log=False))
    E = sp.Symbol("E", positive=True)
    rates = {e.args[0].coeff(t) for e in sol.atoms(sp.exp) if e.args[0].has(t)}
    if len(rates) != 1:
        return sp.simplify(sol)
    rate = rates.pop()
    rat = sp.factor(sp.cancel(sol.subs(sp.exp(rate * t), E)))
    num, den = sp.fraction(rat)
    den = sp.collect(sp.expand(den), E)
    out = (num / den).subs(E, sp.exp(rate * t))
    check = sp.simplify(out.diff(t) - rhs.subs(X, out))
    if check != 0 or sp.simplify(out.subs(t, 0) - X0) != 0:
        raise ArithmeticError("dsolve's solution does not satisfy the ODE")
    return out


@lru_cache(maxsize=1)
@disk_cached
def logistic_solution() -> sp.Expr:
    """$X(t)$ of the balanced full-loss flow (noise allowed), from `dsolve`."""
    return _dsolve(balanced_ode(("pos", "neg")))


@lru_cache(maxsize=1)
@disk_cached
def positive_only_solution() -> sp.Expr:
    r"""$X(t) = X_0 e^{2(g-\mu)t}$: positive pairs with weight decay $\mu$ ($\mu = 0$: none)."""
    return sp.powsimp(_dsolve(balanced_ode(("pos", "wd"))))


@lru_cache(maxsize=1)
@disk_cached
def carrying_capacity() -> sp.Expr:
    r"""$X_\infty = \lim_{t\to\infty} X(t) = g/(\lambda\alpha)$."""
    return sp.simplify(sp.limit(logistic_solution(), t, sp.oo))


@lru_cache(maxsize=1)
@disk_cached
def kappa_growth_law() -> tuple[sp.Expr, sp.Expr]:
    r"""$(\kappa(0), \kappa(t)/\kappa(0))$ for two positive-only modes with a common $X_0$.

    $\kappa = q_1/q_k$ with $q_i = g_i X_i$; the result is $g_1/g_k$ and $e^{2(g_1-g_k)t}$."""
    X_t = positive_only_solution()
    q1, qk = _mode(g * X_t, "1"), _mode(g * X_t, "k")
    kappa = q1 / qk
    k0 = sp.simplify(kappa.subs(t, 0))
    return k0, sp.simplify(sp.powsimp(kappa / k0))


@lru_cache(maxsize=4)
@disk_cached
def dlog_q_parts(terms: tuple[str, ...] = ("pos", "neg")) -> dict[str, sp.Expr]:
    r"""$\frac{d}{dt}\log q$ of one mode, term by term: $(\partial_{w_A} q\,\dot w_A^{(j)} + \partial_{w_B} q\,\dot w_B^{(j)})/q$."""
    fl = decoupled_flow(tuple(terms))
    q = fl.q
    out = {}
    for name in terms:
        d = (q.diff(w_A) * fl.parts_A[name] + q.diff(w_B) * fl.parts_B[name]) / q
        out[name] = in_mode_parameters(sp.expand(sp.cancel(d) * w_A * w_B)) / (w_A * w_B)
        out[name] = sp.simplify(out[name]).subs(alpha_A * alpha_B, alpha)
    return out


@lru_cache(maxsize=4)
@disk_cached
def dlog_kappa_split(terms: tuple[str, ...] = ("pos", "neg"), balanced: bool = True) -> dict[str, sp.Expr]:
    r"""$\frac{d}{dt}\log(q_1/q_k)$ split by term; `balanced` writes it in $X_i = w_{A,i}^2 = w_{B,i}^2$."""
    parts = dlog_q_parts(tuple(terms))
    out = {}
    for name, d in parts.items():
        if balanced:
            d = sp.expand(d.xreplace({w_A: _w, w_B: _w})).subs(_w, sp.sqrt(X))
        else:
            d = d.xreplace({w_A: sp.Symbol("w_A", real=True), w_B: sp.Symbol("w_B", real=True)})
        one = _mode(d, "1")
        k = _mode(d, "k")
        if not balanced:
            one = one.xreplace({w_A: _sym("w_{A1}"), w_B: _sym("w_{B1}")})
            k = k.xreplace({w_A: _sym("w_{Ak}"), w_B: _sym("w_{Bk}")})
        out[name] = sp.factor_terms(sp.simplify(one - k))
    return out


@dataclass(frozen=True)
class PeakTime:
    r"""The stage boundary $t^*$: the root of $\frac{d}{dt}\log\kappa = 0$ on the logistic modes."""

    #: $\frac{d}{dt}\log\kappa(t)$ with both modes' logistic closed forms (exact).
    rate: sp.Expr
    #: Leading order: the weakest mode still unsaturated ($\alpha_k X_k \approx 0$).
    leading: sp.Expr
    #: $\partial t^*/\partial\varepsilon$ for the dropped $\varepsilon = \lambda\alpha_k X_k(t^*)$.
    sensitivity: sp.Expr
    #: $\varepsilon$ evaluated at the leading-order time: the first-order error is sensitivity·ε.
    epsilon: sp.Expr
    #: The stage-2 rate of $\log\kappa$ (strong mode saturated, weak mode still exponential).
    stage2_rate: sp.Expr
    stage1_rate: sp.Expr


@lru_cache(maxsize=1)
@disk_cached
def peak_time() -> PeakTime:
    r"""Predict $t^*$: $2(g_1 - g_k) = 2\lambda\alpha_1 X_1(t)$ to leading order (mode 1 saturating)."""
    split = dlog_kappa_split(("pos", "neg"), balanced=True)
    D = sp.Add(*split.values())
    X1, Xk = _sym("X_1"), _sym("X_k")
    sol1, solk = _mode(logistic_solution(), "1"), _mode(logistic_solution(), "k")
    rate = D.xreplace({X1: sol1, Xk: solk})
    eps = sp.Symbol("varepsilon", nonnegative=True)
    # The term in X_k is the only place the weak mode enters; replace it by a small epsilon.
    weak = sp.expand(D) - sp.expand(D).subs(Xk, 0)
    lam_k = sp.simplify(weak / (2 * Xk))  # = lambda * alpha_k: D = D|_{X_k=0} + 2 lambda alpha_k X_k
    F = sp.expand(D).subs(Xk, 0).xreplace({X1: sol1}) + 2 * eps
    roots = sp.solve(sp.Eq(F.subs(eps, 0), 0), t)
    # Keep the real root: test at a generic point of the stage-1 regime (g_1 > g_k, small X_0).
    probe = {_sym("g_1"): 3, _sym("g_k"): 1, _sym("alpha_1"): 2, S.lam: 1, X0: sp.Rational(1, 1000)}
    roots = [r for r in roots if sp.N(r.subs(probe)).is_real]
    if len(roots) != 1:
        raise ArithmeticError(f"expected one stage-1 peak, got {roots}")
    t_hat = sp.simplify(roots[0])
    sens = sp.simplify((-F.diff(eps) / F.diff(t)).subs(eps, 0).subs(t, t_hat))
    epsilon = sp.simplify(lam_k * solk.subs(t, t_hat))
    # Stage 2: mode 1 at its carrying capacity, mode k still negligible.
    X_inf = carrying_capacity()
    stage2 = sp.simplify(sp.expand(D).subs(Xk, 0).xreplace({X1: _mode(X_inf, "1")}))
    stage1 = sp.simplify(sp.expand(D).subs({X1: 0, Xk: 0}))
    return PeakTime(rate, t_hat, sens, epsilon, stage2, stage1)


@dataclass(frozen=True)
class CCAFixedPoint:
    r"""THEORY §6 as expressions of $\rho_i$ and $\lambda$, confirmed per mode."""

    #: The equilibrium $w_A w_B$ of one mode (any balance): $g/(\lambda\alpha_A\alpha_B)$.
    product: sp.Expr
    #: The equilibrium $q = g\,w_A w_B$ of one mode, and the same as $\rho^2/\lambda$.
    q: sp.Expr
    #: The equilibrium loss of one mode: $-\rho^2/(2\lambda)$.
    loss: sp.Expr
    #: General statements in $\rho_i$, $\lambda$.
    eig: sp.Expr
    kappa: sp.Expr
    loss_total: sp.Expr
    #: $1/\rho^2 = (1 + \sigma_A^2/a^2)(1 + \sigma_B^2/b^2)$: the bound on $\kappa_\infty$ of C9.
    inv_rho2: sp.Expr


rho_i, rho_1, rho_k = sp.symbols("rho_i rho_1 rho_k", positive=True)
i_, m_ = sp.Symbol("i", integer=True, positive=True), S.m


@lru_cache(maxsize=1)
@disk_cached
def cca_fixed_point() -> CCAFixedPoint:
    """Solve the per-mode flow for its equilibria and identify them with CCA."""
    fl = decoupled_flow(("pos", "neg"))
    P = sp.Symbol("P", positive=True)
    # dw_A = w_B (g - lambda alpha w_A w_B): w_B != 0 at a non-trivial equilibrium.
    eq = sp.expand(sp.cancel(fl.dw_A / w_B)).subs(w_A, P / w_B)
    sols = [s for s in sp.solve(sp.Eq(eq, 0), P) if s != 0]
    if len(sols) != 1:
        raise ArithmeticError(f"expected one non-trivial equilibrium product, got {sols}")
    product = sp.simplify(sols[0])
    q_star = sp.simplify(fl.q.subs(w_A, product / w_B))
    rho = mode_rho()
    if sp.simplify(S.lam * q_star - rho**2) != 0:
        raise ArithmeticError("lambda q* != rho^2 per mode")
    loss_star = sp.simplify(fl.loss.subs(w_A, product / w_B))
    if sp.simplify(loss_star + rho**2 / (2 * S.lam)) != 0:
        raise ArithmeticError("L* != -rho^2/(2 lambda) per mode")
    rho_sym = sp.IndexedBase("rho")
    return CCAFixedPoint(
        product=in_mode_parameters(product), q=q_star, loss=loss_star,
        eig=rho_i**2 / S.lam, kappa=(rho_1 / rho_k) ** 2,
        loss_total=-sp.Sum(rho_sym[i_] ** 2, (i_, 1, m_)) / (2 * S.lam),
        inv_rho2=_paired_factors(sp.factor(sp.expand(1 / rho**2))),
    )


def _paired_factors(expr: sp.Expr) -> sp.Expr:
    r"""Write $\prod_j p_j / \prod_j d_j$ as $\prod_j (p_j/d_j)$, pairing factors that share symbols."""
    num, den = sp.fraction(expr)
    den_factors = list(sp.Mul.make_args(den))
    out = []
    for p in sp.Mul.make_args(num):
        mine = [d for d in den_factors if d.free_symbols <= p.free_symbols]
        den_factors = [d for d in den_factors if d not in mine]
        out.append(sp.expand(p / sp.Mul(*mine)))
    if den_factors:
        return expr
    result = sp.Mul(*out, evaluate=False)
    if sp.simplify(result - expr) != 0:
        raise ArithmeticError("pairing factors changed the expression")
    return result
