r"""Mini-batch estimators of the loss terms, *lifted* from their per-sample forms.

A batch holds $n$ positive pairs, the rows of $X_A \in \mathbb R^{n\times d_A}$ and
$X_B \in \mathbb R^{n\times d_B}$. Row $i$ of $X_A$ stands for $x_A$, row $j$ of $X_B$
for $x_B$ (positive term, $i = j$) or for $\tilde x_B$ (negative term, $i \ne j$: the
*other* pairs of the batch are the negatives). With a weight matrix $\Omega$ the
estimator of a term with per-sample form $\ell$ is

$$\hat L = \sum_{i,j} \Omega_{ij}\, \ell(x_A^{(i)}, x_B^{(j)}), \qquad
  \Omega^{+} = \tfrac1n I, \qquad \Omega^{-} = \tfrac{1}{n(n-1)}(\mathbb 1\mathbb 1^\top - I),$$

the sample mean over pairs and the off-diagonal **U-statistic** over negatives. Every
$(x_A^{(i)}, x_B^{(j)})$ with $\Omega_{ij} \ne 0$ has the law of the pair the term
averages over and $\sum_{ij}\Omega_{ij} = 1$, so $\mathbb E \hat L = L$ and, by linearity
of differentiation, $\mathbb E\nabla\hat L = \nabla L$. (Keeping the diagonal,
$\Omega = \mathbb 1\mathbb 1^\top/n^2$ — the *V-statistic* — is biased by $O(1/n)$; it is
offered as `negatives="v"` so that the bias can be demonstrated.)

**Lifting.** Write $\ell$ and its per-sample matrix gradient as chains
$K_0 v_1 \,[v_2^\top K_1 v_3]\cdots[v_{2p-2}^\top K_{p-1} v_{2p-1}]\, v_{2p}^\top K_p$ of
constant factors and sample vectors. Each bracket is a scalar $c_q(i,j)$, i.e. an
$n\times n$ matrix $E_q$ such as $X_A K X_B^\top$; the end vectors become the batch
matrices, and the double sum is

$$\sum_{ij}\Omega_{ij}\, c_1\cdots c_{p-1}\, K_0 v_1 v_{2p}^\top K_p
  = K_0 X_{(1)}^\top \big(\Omega \circ E_1 \circ\cdots\circ E_{p-1}\big)^{(\top)} X_{(2p)} K_p ,$$

with $\Omega \circ H = \alpha\,(I\circ H) + \beta H$ for $\Omega = \alpha I + \beta\,\mathbb 1\mathbb 1^\top$.
SymPy's matrix calculus cannot differentiate a Hadamard product, so the batch gradient
is the lift of the per-sample gradient (`matrix_gradient` of the trace form of $\ell$),
not the derivative of the lifted loss; the two are checked against each other entry by
entry with `theory.explicit` in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import sympy as sp
from sympy import HadamardProduct, Identity, MatAdd, MatMul, MatrixSymbol, OneMatrix, Trace, Transpose

from ._diskcache import disk_cached
from . import _symbols as S
from ._derivations import derivation_section
from ._expectation import expectation, named_view_moments
from ._gradient import fold_symmetric, matrix_gradient
from ._latex import latex, unicode
from ._latex_document import LatexRepr
from ._latex_layout import fit
from ._terms import LossTerm, canonical_trace, get_term

#: Batch size.
n = sp.Symbol("n", integer=True, positive=True)
#: The batch: row i of X_A and row i of X_B are the i-th positive pair.
X_A = MatrixSymbol("X_A", n, S.d_A)
X_B = MatrixSymbol("X_B", n, S.d_B)

#: Which batch matrix a per-sample vector is a row of, and its summation index.
_ROWS = {S.x_A: (X_A, "i"), S.x_B: (X_B, "j"), S.x_B_neg: (X_B, "j")}
#: The data symbols a batch estimator must not contain (it sees samples, not moments).
_MOMENTS = (S.Sigma_A, S.Sigma_B, S.C, S.Sigma_z, S.A, S.B, S.A_xi, S.B_xi)

Kind = Literal["pair", "u-statistic", "v-statistic", "exact"]


@dataclass(frozen=True)
class BatchTerm(LatexRepr):
    r"""The batch estimator $\hat L$ of one term and its gradients $\nabla_{W_A}\hat L$, $\nabla_{W_B}\hat L$."""

    name: str
    weight: sp.Expr
    kind: Kind
    loss: sp.Expr
    grad_A: sp.Expr
    grad_B: sp.Expr

    def latex(self) -> str:
        """$\\hat L$ and both gradients as an `aligned` block broken to fit a page."""
        name = self.name.replace("_", r"\_")  # letters inside \mathrm, not subscripts
        L = rf"\hat L_{{\mathrm{{{name}}}}}"
        rows = [(L, self.loss), (rf"\nabla_{{W_A}} {L}", self.grad_A), (rf"\nabla_{{W_B}} {L}", self.grad_B)]
        return fit("\\begin{aligned}\n" + " \\\\\n".join(f"{k} &= {latex(v)}" for k, v in rows) + "\n\\end{aligned}")

    def __repr__(self) -> str:
        return f"BatchTerm({self.name}, {self.kind}, weight={unicode(self.weight)})"

    def _caption(self) -> str:
        return f"Batch estimator of {self.name} ({self.kind})"


def _vec(f: sp.Expr) -> tuple[MatrixSymbol, bool] | None:
    """(sample vector, is_row) if `f` is a per-sample vector or its transpose."""
    if isinstance(f, Transpose) and f.arg in _ROWS:
        return f.arg, True
    if f in _ROWS:
        return f, False
    return None


def trace_form(per_sample: sp.Expr) -> sp.Expr:
    r"""A per-sample scalar as $\sum c\,\operatorname{tr}(\text{chain})$, squares $s^2$ as $s\,s^\top$.

    `matrix_gradient` cannot differentiate a power of a $1\times 1$ chain; a trace of one
    longer chain it can. Each factor is a $1\times1$ chain, so any concatenation is valid.
    """
    expr = sp.expand(per_sample)
    out = []
    for term in expr.args if isinstance(expr, (sp.Add, MatAdd)) else (expr,):
        coeff, factors = (term.as_coeff_matrices() if isinstance(term, MatMul) else (sp.S.One, [term]))
        chain: list[sp.Expr] = []
        for f in factors:
            if not isinstance(f, sp.MatPow):
                chain.append(f)
                continue
            base, times = f.base, int(f.exp)
            if base.shape != (1, 1) or times < 1:
                raise NotImplementedError(f"per-sample factor {f} is not a power of a scalar chain")
            for k in range(times):
                g = Transpose(base).doit() if k % 2 else base  # s s^T, so MatMul cannot re-fold it
                chain.extend(g.args if isinstance(g, MatMul) else (g,))
        out.append(coeff * Trace(MatMul(*chain)))
    return sp.Add(*out)


def _scalar_matrix(u: MatrixSymbol, K: list[sp.Expr], w: MatrixSymbol) -> sp.Expr:
    r"""The $n\times n$ matrix $E$ with $E_{ij} = c(i, j) = u^\top K w$, rows indexed by $i$."""
    (U, iu), (V, iw) = _ROWS[u], _ROWS[w]
    if iu == iw:
        raise NotImplementedError(f"a scalar {u.name}ᵀ…{w.name} of one view's sample has no U-statistic lift here")
    core = MatMul(U, *K, V.T).doit()
    return core if iu == "i" else Transpose(core).doit()


def _weighted(alpha: sp.Expr, beta: sp.Expr, H: sp.Expr | None) -> sp.Expr:
    r"""$\Omega \circ H$ for $\Omega = \alpha I + \beta\,\mathbb 1\mathbb 1^\top$ ($\Omega$ itself if no $H$)."""
    if H is None:
        parts = [alpha * Identity(n), beta * OneMatrix(n, n)]
    else:
        parts = [alpha * HadamardProduct(Identity(n), H), beta * H]
    kept = [p for (c, p) in zip((alpha, beta), parts) if c != 0]
    return MatAdd(*kept).doit() if len(kept) > 1 else kept[0]


def _hadamard(mats: list[sp.Expr]) -> sp.Expr | None:
    return None if not mats else (mats[0] if len(mats) == 1 else HadamardProduct(*mats))


def _segments(mats: list[sp.Expr], start: int) -> tuple[list[sp.Expr], list[sp.Expr], int]:
    """From a row vector at `start`: (scalar matrices, trailing constants, end index of the last row vector)."""
    scalars: list[sp.Expr] = []
    i = start
    while True:
        u = _vec(mats[i])
        if u is None or not u[1]:
            raise NotImplementedError("sample vectors are not in outer-product pairs")
        j = i + 1
        while j < len(mats) and _vec(mats[j]) is None:
            j += 1
        if j == len(mats):
            return scalars, mats[i + 1:], i
        w = _vec(mats[j])
        if w[1]:
            raise NotImplementedError("two row vectors in a row")
        scalars.append(_scalar_matrix(u[0], mats[i + 1:j], w[0]))
        i = j + 1


def lift(expr: sp.Expr, alpha: sp.Expr, beta: sp.Expr) -> sp.Expr:
    r"""$\sum_{ij}\Omega_{ij}\,\mathrm{expr}(x_A^{(i)}, x_B^{(j)})$ as a matrix expression in $X_A, X_B$."""
    expr = sp.expand(expr)
    out = []
    for term in expr.args if isinstance(expr, (sp.Add, MatAdd)) else (expr,):
        if isinstance(term, sp.Mul) and any(isinstance(a, Trace) for a in term.args):
            coeff = sp.Mul(*[a for a in term.args if not isinstance(a, Trace)])
            (tr,) = [a for a in term.args if isinstance(a, Trace)]
        elif isinstance(term, Trace):
            coeff, tr = sp.S.One, term
        else:
            tr = None
        if tr is not None:  # a scalar: rotate the cyclic chain to start on a row vector
            mats = list(tr.arg.args) if isinstance(tr.arg, MatMul) else [tr.arg]
            first = next(k for k, f in enumerate(mats) if _vec(f) and _vec(f)[1])
            mats = mats[first:] + mats[:first] + [mats[first]]  # close the cycle for _segments
            E, _, _ = _segments(mats, 0)
            if len(E) == 2:  # sum_ij (E1 o E2)_ij = tr(E1^T E2): no Hadamard needed
                body = alpha * Trace(HadamardProduct(*E)) if alpha != 0 else sp.S.Zero
                out.append(coeff * (body + beta * Trace(MatMul(Transpose(E[0]), E[1]).doit())))
            else:
                H = _hadamard(E)
                out.append(coeff * (alpha * Trace(H) + beta * Trace(OneMatrix(n, n) * H)))
            continue
        coeff, mats = term.as_coeff_matrices() if isinstance(term, MatMul) else (sp.S.One, [term])
        mats = list(mats)
        first = next(k for k, f in enumerate(mats) if _vec(f))
        v1 = _vec(mats[first])
        if v1[1]:
            raise NotImplementedError("a gradient chain must start with a column sample vector")
        E, K_end, last = _segments(mats, first + 1)
        a, b = _ROWS[v1[0]][1], _ROWS[_vec(mats[last])[0]][1]
        if a == b:
            raise NotImplementedError("both ends of a gradient chain are samples of one index")
        P = _weighted(alpha, beta, _hadamard(E))
        P = P if a == "i" else Transpose(P).doit()
        out.append(coeff * MatMul(*mats[:first], _ROWS[v1[0]][0].T, P, _ROWS[_vec(mats[last])[0]][0], *K_end))
    total = sp.Add(*out) if not isinstance(out[0], sp.MatrixExpr) or out[0].shape == (1, 1) else MatAdd(*out)
    return sp.expand(total.doit())


def _tidy(expr: sp.Expr) -> sp.Expr:
    r"""Factor each term's scalar coefficient: $\frac{1}{2n(n-1)}$ rather than $\frac{1}{2n^2-2n}$."""
    def one(t: sp.Expr) -> sp.Expr:
        if isinstance(t, MatMul):
            c, mats = t.as_coeff_matrices()
            return sp.factor(c) * (MatMul(*mats) if len(mats) > 1 else mats[0])
        if isinstance(t, sp.Mul):
            c = sp.Mul(*[a for a in t.args if not a.has(MatrixSymbol)])
            return sp.factor(c) * sp.Mul(*[a for a in t.args if a.has(MatrixSymbol)])
        return t

    if isinstance(expr, (sp.Add, MatAdd)):
        return type(expr)(*[one(t) for t in expr.args])
    return one(expr)


def _weights(vectors: set, negatives: str) -> tuple[Kind, sp.Expr, sp.Expr]:
    if vectors == {S.x_A, S.x_B}:
        return "pair", 1 / n, sp.S.Zero
    if vectors == {S.x_A, S.x_B_neg}:
        if negatives == "u":
            return "u-statistic", -1 / (n * (n - 1)), 1 / (n * (n - 1))
        return "v-statistic", sp.S.Zero, 1 / n**2
    raise NotImplementedError(f"no batch estimator for a per-sample term in {sorted(v.name for v in vectors)}")


def batch_term(name: str, negatives: str = "u") -> BatchTerm:
    r"""The batch estimator of registered term `name`, derived from its per-sample form.

    A term without data (weight decay) is its own exact estimator. A term given only as a
    population expression in the moments has no batch estimator: `ValueError`.
    """
    if negatives not in ("u", "v"):
        raise ValueError(f"negatives: expected 'u' (U-statistic) or 'v' (V-statistic), got {negatives!r}")
    return _batch_term(get_term(name), negatives)


@lru_cache(maxsize=32)
@disk_cached
def _batch_term(term: LossTerm, negatives: str) -> BatchTerm:
    # Cached on the term object itself, so re-registering a name is never served stale.
    name = term.name
    if term.per_sample is None:
        if term.expr.has(*_MOMENTS):
            raise ValueError(f"terms: {name!r} has no per-sample form, so it has no batch estimator")
        return BatchTerm(name, term.weight, "exact", term.expr,
                         matrix_gradient(term.expr, S.W_A), matrix_gradient(term.expr, S.W_B))
    vectors = {v for v in term.per_sample.atoms(MatrixSymbol) if v in _ROWS}
    kind, alpha, beta = _weights(vectors, negatives)
    ell = trace_form(term.per_sample)
    loss = _tidy(canonical_trace(lift(ell, alpha, beta)))
    grads = [_tidy(lift(matrix_gradient(ell, W), alpha, beta)) for W in (S.W_A, S.W_B)]
    return BatchTerm(name, term.weight, kind, loss, *grads)


def per_sample_gradient(name: str, wrt: MatrixSymbol) -> sp.Expr:
    r"""$\nabla_W \ell$ of a term's per-sample form (what the batch gradient averages)."""
    return matrix_gradient(trace_form(get_term(name).per_sample), wrt)


def expected_per_sample_gradient(name: str, wrt: MatrixSymbol) -> sp.Expr:
    r"""$\mathbb E\,\nabla_W\ell$ by the expectation step: equals $\nabla_W L$ (unbiasedness)."""
    return fold_symmetric(expectation(per_sample_gradient(name, wrt), named_view_moments()))


@derivation_section("batch", "Mini-batch estimators (in-batch negatives)")
def _batch_section() -> list[tuple[str, str]]:
    out = []
    for name in ("pos", "neg"):
        bt = batch_term(name)
        out.append((f"batch L_{name} ({bt.kind})", rf"\hat L_{{\mathrm{{{name}}}}} = {latex(bt.loss)}"))
        for W, g in ((S.W_A, bt.grad_A), (S.W_B, bt.grad_B)):
            out.append((f"batch gradient of L_{name} in {W.name}",
                        rf"\nabla_{{{latex(W)}}} \hat L_{{\mathrm{{{name}}}}} = {latex(g)}"))
        for W in (S.W_A, S.W_B):
            out.append((f"unbiasedness of L_{name} in {W.name}",
                        rf"\mathbb{{E}}\,\nabla_{{{latex(W)}}}\ell_{{\mathrm{{{name}}}}} = "
                        rf"{latex(expected_per_sample_gradient(name, W))}"))
    return out


__all__ = ["BatchTerm", "X_A", "X_B", "batch_term", "expected_per_sample_gradient", "lift", "n",
           "per_sample_gradient", "trace_form"]
