r"""Batch gradients through the features: no $d\times d$ batch moment, only $m\times n$ products.

The batch estimators of `theory._batch` read the batch through chains such as
$W_B X_B^\top X_B W_B^\top W_A X_A^\top X_A$, whose middle $X_B^\top X_B$ is the $d_B\times d_B$
batch second moment $n\hat\Sigma_B$. Every per-sample term of the loss sees a sample only through
its feature $f_A = W_A x_A$, so every chain pairs each $W$ with its own batch matrix. With the
**features** of the batch

$$F_A = W_A X_A^\top,\qquad F_B = W_B X_B^\top \qquad (m\times n),$$

each lifted gradient is a coefficient times the batch, plus a data-free part (weight decay):

$$\nabla_{W_A}\hat L = P_A(F_A, F_B)\,X_A + R_A(W_A),\qquad
  \nabla_{W_B}\hat L = P_B(F_A, F_B)\,X_B + R_B(W_B),$$

e.g. for `neg` (U-statistic) $P_A = \frac{\lambda}{n(n-1)}\big(F_B F_B^\top F_A - F_B\,(I\circ F_B^\top F_A)\big)$:
$W_B\hat\Sigma_B W_B^\top = F_BF_B^\top/n$ is $m\times m$. `feature_form` finds $P$ by pairing
$W_A X_A^\top \to F_A$, $X_A W_A^\top \to F_A^\top$ (and for $B$) in each chain, and checks the
result by substituting the features back (the two expressions must cancel term by term).

**The batch in its factors.** Stacking the rows $x_A^{(i)\top} = z^{(i)\top}A^\top +
\xi_A^{(i)\top}A_\xi^\top$ of the data model (THEORY §1) gives

$$X_A = Z A^\top + \Xi_A A_\xi^\top,\qquad F_A = (W_A A)Z^\top + (W_A A_\xi)\Xi_A^\top,\qquad
  P_A X_A = (P_A Z)A^\top + (P_A\Xi_A)A_\xi^\top,$$

so a step costs $O(m(d + n)(r + k))$ and never forms $X_A$; with isotropic noise
($A_\xi = \sigma_A I$, $\Xi_A$ is $n\times d_A$) $O(m\,d\,(n + r))$.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp
from sympy import MatAdd, MatMul, MatrixSymbol, Trace, Transpose, ZeroMatrix

from ._diskcache import disk_cached
from . import _symbols as S
from ._batch import X_A, X_B, _batch_term, n
from ._latex import latex
from ._latex_document import LatexRepr
from ._latex_layout import fit
from ._structured import noise_substitution
from ._terms import get_term

#: The features of the batch (row $i$ of $F_A^\top$ is $f_A(x_A^{(i)})$) and the gradient coefficients.
F_A, F_B = MatrixSymbol("F_A", S.m, n), MatrixSymbol("F_B", S.m, n)
P_A, P_B = MatrixSymbol("P_A", S.m, n), MatrixSymbol("P_B", S.m, n)
#: The base randomness of the batch, one row per pair: $z^{(i)\top}$, $\xi_A^{(i)\top}$, $\xi_B^{(i)\top}$.
Z = MatrixSymbol("Z", n, S.r)
Xi_A, Xi_B = MatrixSymbol("Xi_A", n, S.k_A), MatrixSymbol("Xi_B", n, S.k_B)

_PAIRS = {(S.W_A, X_A.T): F_A, (X_A, S.W_A.T): F_A.T, (S.W_B, X_B.T): F_B, (X_B, S.W_B.T): F_B.T}
_RAW = frozenset({S.W_A, S.W_B, X_A, X_B})


class NotFeatureForm(ValueError):
    """A batch gradient that is not (a function of the features) × (the batch)."""


def batch_in_factors() -> dict:
    r"""$\{X_A: ZA^\top + \Xi_A A_\xi^\top,\ X_B: \dots\}$: the data model's rows, stacked."""
    rows = {Transpose(S.z): Z, Transpose(S.xi_A): Xi_A, Transpose(S.xi_B): Xi_B}
    return {X: Transpose(S.DATA_MODEL[x]).doit().xreplace(rows) for X, x in ((X_A, S.x_A), (X_B, S.x_B))}


def _paired(mats: list) -> list:
    out, i = [], 0
    while i < len(mats):
        pair = tuple(mats[i:i + 2])
        if pair in _PAIRS:
            out.append(_PAIRS[pair])
            i += 2
        else:
            out.append(mats[i])
            i += 1
    return out


def _chain(mats: list, coeff: sp.Expr = sp.S.One) -> sp.Expr:
    return coeff * (mats[0] if len(mats) == 1 else MatMul(*mats))


def _raw_left(e: sp.Expr) -> bool:
    return bool(e.atoms(MatrixSymbol) & _RAW)


def to_features(expr: sp.Expr) -> sp.Expr:
    r"""`expr` with every $W X^\top$ / $X W^\top$ pair replaced by its feature (traces: cyclically)."""
    def matmul(e: MatMul) -> sp.Expr:
        coeff, mats = e.as_coeff_matrices()
        return _chain(_paired(list(mats)), coeff)

    def trace(e: Trace) -> sp.Expr:
        mats = list(e.arg.args) if isinstance(e.arg, MatMul) else [e.arg]
        for k in range(len(mats)):  # a pair may straddle the cut of the cyclic chain
            out = _paired(mats[k:] + mats[:k])
            if not any(_raw_left(f) for f in out):
                return Trace(_chain(out))
        return e

    expr = expr.replace(lambda e: isinstance(e, Trace) and isinstance(e.arg, MatMul), trace)
    return expr.replace(lambda e: isinstance(e, MatMul), matmul)


def from_features(expr: sp.Expr) -> sp.Expr:
    """The inverse substitution $F_A \\to W_A X_A^\\top$, $F_B \\to W_B X_B^\\top$, simplified."""
    return sp.expand(expr.xreplace({F_A: S.W_A * X_A.T, F_B: S.W_B * X_B.T}).doit())


def _terms(e: sp.Expr) -> tuple:
    e = sp.expand(e)
    return e.args if isinstance(e, (MatAdd, sp.Add)) else (e,)


def feature_form(grad: sp.Expr, X: MatrixSymbol, name: str = "") -> tuple[sp.Expr, sp.Expr]:
    r"""$(P, R)$ with `grad` $= P X + R$, $P$ a function of the features only and $R$ free of data.

    Checked: $PX + R$ with the features substituted back cancels `grad` term by term.
    **Raises** `NotFeatureForm` when a chain does not end on `X` or keeps a raw $W$ or batch matrix.
    """
    rows, cols = grad.shape
    P, R = [], []
    for t in _terms(to_features(grad)):
        coeff, mats = t.as_coeff_matrices() if isinstance(t, MatMul) else (sp.S.One, [t])
        mats = list(mats)
        if not t.has(X_A, X_B, F_A, F_B):
            R.append(t)
        elif mats[-1] == X and len(mats) > 1 and not any(_raw_left(f) for f in mats[:-1]):
            P.append(_chain(mats[:-1], coeff))
        else:
            raise NotFeatureForm(f"terms: the batch gradient of {name!r} is not a function of the features "
                                 f"W_A X_Aᵀ, W_B X_Bᵀ times the batch (chain {t})")
    P_e = MatAdd(*P).doit() if P else ZeroMatrix(rows, X.shape[0])
    R_e = MatAdd(*R).doit() if R else ZeroMatrix(rows, cols)
    residual = (from_features(P_e * X) + R_e - sp.expand(grad)).doit() if P else (R_e - sp.expand(grad)).doit()
    if residual != ZeroMatrix(rows, cols) and sp.expand(residual) != 0:
        raise NotFeatureForm(f"terms: the feature form of {name!r} does not give back its batch gradient")
    return P_e, R_e


@dataclass(frozen=True)
class FeatureBatch(LatexRepr):
    r"""The batch estimator of $\sum_t w_t L_t$ through its features, and with the batch in its factors.

    `coeff_A`, `rest_A`, `loss` are in $F_A, F_B$ (and $W$ for data-free terms); `features_A`
    is $F_A$ in $W_A$, $A$, $Z$, $A_\xi$, $\Xi_A$; `grad_A` is $\nabla_{W_A}\hat L$ in $P_A$ and the factors.
    """

    names: tuple[str, ...]
    negatives: str
    noise: tuple[str, str]
    loss: sp.Expr
    coeff_A: sp.Expr
    coeff_B: sp.Expr
    features_A: sp.Expr
    features_B: sp.Expr
    grad_A: sp.Expr
    grad_B: sp.Expr

    def latex(self) -> str:
        """The coefficients and both gradients as an `aligned` block."""
        rows = [("P_A", self.coeff_A), ("P_B", self.coeff_B), ("F_A", self.features_A),
                (r"\nabla_{W_A}\hat L", self.grad_A), (r"\nabla_{W_B}\hat L", self.grad_B)]
        return fit("\\begin{aligned}\n" + " \\\\\n".join(f"{k} &= {latex(v)}" for k, v in rows) + "\n\\end{aligned}")

    def _caption(self) -> str:
        noise = "/".join(self.noise)
        return f"Batch gradient of {' + '.join(self.names)} through the features ({noise} noise)"


def feature_batch(terms: tuple[str, ...] | str = ("pos", "neg"), negatives: str = "u", noise_A: str = "thin",
                  noise_B: str = "thin") -> FeatureBatch:
    """The feature form of the batch estimator of registered `terms` (see the module docstring)."""
    names = (terms,) if isinstance(terms, str) else tuple(terms)
    noise_substitution(noise_A, noise_B)  # validates the kinds
    if negatives not in ("u", "v"):
        raise ValueError(f"negatives: expected 'u' (U-statistic) or 'v' (V-statistic), got {negatives!r}")
    return _feature_batch(tuple(get_term(t) for t in names), negatives, noise_A, noise_B)


def _noise(noise_A: str, noise_B: str) -> dict:
    """The noise kind substituted in the factors: σI (and Ξ of width d), or no noise at all."""
    sub = noise_substitution(noise_A, noise_B)
    for kind, Xi, d, A_xi in ((noise_A, Xi_A, S.d_A, S.A_xi), (noise_B, Xi_B, S.d_B, S.B_xi)):
        if kind == "isotropic":
            sub[Xi] = MatrixSymbol(Xi.name, n, d)
        elif kind == "none":
            sub[Xi] = ZeroMatrix(n, Xi.shape[1])
            sub[A_xi] = ZeroMatrix(A_xi.shape[0], A_xi.shape[1])
    return sub


def _in_factors(expr: sp.Expr, sub: dict) -> sp.Expr:
    e = sp.expand(expr.doit())
    return sp.expand(e.xreplace(sub).doit()) if sub else e


@lru_cache(maxsize=64)
@disk_cached
def _feature_batch(terms: tuple, negatives: str, noise_A: str, noise_B: str) -> FeatureBatch:
    # Keyed on the LossTerm objects: a re-registered term is derived afresh.
    loss, PA, PB, RA, RB = [], [], [], [], []
    for t in terms:
        bt = _batch_term(t, negatives)
        w = bt.weight
        pa, ra = feature_form(bt.grad_A, X_A, t.name)
        pb, rb = feature_form(bt.grad_B, X_B, t.name)
        PA.append(w * pa)
        PB.append(w * pb)
        RA.append(w * ra)
        RB.append(w * rb)
        loss.append(w * to_features(bt.loss))
    total = lambda parts: MatAdd(*parts).doit()  # noqa: E731
    PA_e, PB_e, RA_e, RB_e = total(PA), total(PB), total(RA), total(RB)
    data = batch_in_factors()
    sub = _noise(noise_A, noise_B)
    feats = [_in_factors(W * Transpose(data[X]), sub) for W, X in ((S.W_A, X_A), (S.W_B, X_B))]
    gA = _in_factors(P_A * data[X_A], sub) + RA_e if PA_e != ZeroMatrix(*PA_e.shape) else RA_e
    gB = _in_factors(P_B * data[X_B], sub) + RB_e if PB_e != ZeroMatrix(*PB_e.shape) else RB_e
    return FeatureBatch(tuple(t.name for t in terms), negatives, (noise_A, noise_B), sp.Add(*loss), PA_e, PB_e,
                        *feats, sp.expand(gA.doit()) if isinstance(gA, MatAdd) else gA,
                        sp.expand(gB.doit()) if isinstance(gB, MatAdd) else gB)


__all__ = ["F_A", "F_B", "FeatureBatch", "NotFeatureForm", "P_A", "P_B", "Xi_A", "Xi_B", "Z", "batch_in_factors",
           "feature_batch", "feature_form", "from_features", "to_features"]
