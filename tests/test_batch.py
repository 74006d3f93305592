r"""The batch estimators (`theory._batch`, `numerics._batchfn`): derived, exact, unbiased.

Oracles: (1) the definition $\hat L = \sum_{ij}\Omega_{ij}\,\ell(x_A^{(i)}, x_B^{(j)})$,
expanded entry by entry from the per-sample term; (2) `sympy.diff` of that expansion;
(3) central differences of the compiled loss; (4) the expectation step and Monte Carlo
for unbiasedness; (5) the exact variance law $\operatorname{Var} = (p + q/(n-1))/n$.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from cdyn import numerics
from cdyn import theory
from cdyn.numerics._batchfn import batch_function, compile_staged
from cdyn.numerics._sampling import sample_pairs
from tests.helpers import central_difference, problems, rel_err, weights
from cdyn.theory import _batch as tb

S = theory.symbols
N_SMALL = 3
# m = 1 keeps the entry-wise expansions small; n = 3 has diagonal and off-diagonal pairs.
DIMS = {S.m: 1, S.d_A: 2, S.d_B: 2, S.r: 1, S.k_A: 1, S.k_B: 1, tb.n: N_SMALL}


def _had(e: sp.Expr) -> sp.Expr:
    """Evaluate what `theory.explicit` leaves standing on explicit matrices: Hadamard products, 𝟙𝟙ᵀ."""
    def ev(node):
        mats = [node.base] * int(node.exp) if isinstance(node, sp.HadamardPower) else list(node.args)
        out = mats[0].as_explicit()
        for M in mats[1:]:
            out = out.multiply_elementwise(M.as_explicit())
        return out

    e = e.replace(lambda x: isinstance(x, sp.OneMatrix), lambda x: sp.ones(*x.shape))
    e = e.replace(lambda x: isinstance(x, (sp.HadamardProduct, sp.HadamardPower)), ev).doit()
    return e.applyfunc(sp.expand) if isinstance(e, sp.MatrixBase) else sp.expand(e)


def explicit(expr: sp.Expr) -> sp.Expr:
    return _had(theory.explicit(expr, DIMS))


def _definition(name: str, negatives: str) -> sp.Expr:
    r"""$\sum_{ij}\Omega_{ij}\,\ell(\text{row } i \text{ of } X_A, \text{row } j \text{ of } X_B)$, entry by entry."""
    term = theory.get_term(name)
    ell = theory.explicit(term.per_sample, DIMS)
    XA, XB = theory.entries(tb.X_A, N_SMALL, 2), theory.entries(tb.X_B, N_SMALL, 2)
    xa = theory.entries(S.x_A, 2, 1)
    xb = theory.entries(S.x_B_neg if name == "neg" else S.x_B, 2, 1)
    total = 0
    for i in range(N_SMALL):
        for j in range(N_SMALL):
            if name == "pos":
                w = sp.Rational(1, N_SMALL) if i == j else 0
            elif negatives == "u":
                w = 0 if i == j else sp.Rational(1, N_SMALL * (N_SMALL - 1))
            else:
                w = sp.Rational(1, N_SMALL**2)
            if w:
                sub = {xa[k]: XA[i, k] for k in range(2)} | {xb[k]: XB[j, k] for k in range(2)}
                total += w * ell.xreplace(sub)
    return sp.expand(total)


@pytest.mark.parametrize("name,negatives", [("pos", "u"), ("neg", "u"), ("neg", "v")])
def test_batch_loss_is_the_sum_of_per_sample_terms(name, negatives):
    bt = tb.batch_term(name, negatives)
    assert sp.expand(explicit(bt.loss) - _definition(name, negatives)) == 0


@pytest.mark.parametrize("name,negatives", [("pos", "u"), ("neg", "u"), ("neg", "v")])
def test_batch_gradient_is_the_entrywise_derivative(name, negatives):
    bt = tb.batch_term(name, negatives)
    L = _definition(name, negatives)
    for W, grad in ((S.W_A, bt.grad_A), (S.W_B, bt.grad_B)):
        E = theory.entries(W, 1, 2)
        want = E.applyfunc(lambda e: sp.diff(L, e))
        assert (explicit(grad) - want).applyfunc(sp.expand) == sp.zeros(1, 2)


@pytest.mark.parametrize("name", ["pos", "neg"])
def test_expected_per_sample_gradient_is_the_population_gradient(name):
    """Unbiasedness, exactly: E ∇ℓ (expectation step) = ∇ E ℓ (matrix calculus), entry by entry."""
    dims = {S.m: 2, S.d_A: 2, S.d_B: 3, S.r: 1, S.k_A: 1, S.k_B: 1}
    for W in (S.W_A, S.W_B):
        lhs = tb.expected_per_sample_gradient(name, W)
        rhs = theory.matrix_gradient(theory.get_term(name).expr, W)
        diff = theory.explicit(lhs, dims) - theory.explicit(rhs, dims)
        assert diff.applyfunc(sp.expand) == sp.zeros(*diff.shape)


def test_weight_decay_is_its_own_estimator_and_moment_terms_have_none():
    assert tb.batch_term("wd").kind == "exact"
    theory.register_term("whiten_test", sp.Trace(S.W_A * S.Sigma_A * S.W_A.T) / 2, replace=True)
    try:
        with pytest.raises(ValueError, match="whiten_test"):
            tb.batch_term("whiten_test")
    finally:
        theory.unregister_term("whiten_test")


# Central differences: truncation O(h^2 |f'''|) + rounding O(eps |f|/h) ~ 1e-10 for h = 1e-5.
H, TOL = 1e-5, 1e-6


@settings(max_examples=10)
@given(problems(max_r=2, max_extra_d=2, max_m=2), st.integers(2, 7), st.sampled_from(["u", "v"]),
       st.integers(0, 2**16))
def test_compiled_batch_gradient_matches_central_differences(p, n, negatives, seed):
    terms = ("pos", "neg", "wd")
    fn = batch_function(p, terms, n, negatives)
    W_A, W_B = weights(p, 0.7, seed)
    XA, XB = sample_pairs(p.A, p.B, p.A_xi, p.B_xi, p.Sigma_z, n, np.random.default_rng(seed))
    _, gA, gB = fn(W_A, W_B, XA, XB)
    assert rel_err(gA, central_difference(lambda X: fn(X, W_B, XA, XB)[0], W_A, H)) <= TOL
    assert rel_err(gB, central_difference(lambda X: fn(W_A, X, XA, XB)[0], W_B, H)) <= TOL


def test_compiled_matches_the_explicit_expression():
    """The staged compiler (Hadamard → diagonal/trace) against plain entry-wise evaluation."""
    p = numerics.random_problem([1.5, 0.5], [1.0, 0.7], d_A=2, d_B=2, m=1, noise_A=0.2, noise_B=0.1, seed=4)
    rng = np.random.default_rng(1)
    W_A, W_B = weights(p, 0.8, 2)
    XA, XB = sample_pairs(p.A, p.B, p.A_xi, p.B_xi, None, N_SMALL, rng)
    fn = batch_function(p, ("pos", "neg"), N_SMALL)
    L, gA, gB = fn(W_A, W_B, XA, XB)
    sub = {}
    for sym, M in ((S.W_A, W_A), (S.W_B, W_B), (tb.X_A, XA), (tb.X_B, XB)):
        E = theory.entries(sym, *M.shape)
        sub |= {E[i, j]: M[i, j] for i, j in np.ndindex(*M.shape)}
    want = explicit(tb.batch_term("pos").loss + p.lam * tb.batch_term("neg").loss)
    assert abs(L - float(want.xreplace(sub))) <= 1e-12 * max(1.0, abs(L))
    wantA = explicit(tb.batch_term("pos").grad_A + p.lam * tb.batch_term("neg").grad_A)
    assert np.allclose(gA, np.array(wantA.xreplace(sub), dtype=float), rtol=1e-12, atol=1e-12)


def test_staged_compiler_general_hadamard_and_ones():
    """The paths the estimators do not use today: dense Hadamard, 𝟙𝟙ᵀ, an unabsorbed diagonal."""
    k = sp.Symbol("k", integer=True, positive=True)
    P, Q = sp.MatrixSymbol("P", k, k), sp.MatrixSymbol("Q", k, k)
    outs = {"dense": sp.HadamardProduct(P, Q * P), "ones": sp.Trace(sp.OneMatrix(k, k) * P),
            "diag": sp.MatMul(sp.HadamardProduct(sp.Identity(k), P * Q), P * Q + P)}
    run = compile_staged(outs, {k: 4})
    rng = np.random.default_rng(0)
    Pv, Qv = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    dense, ones, diag = run({"P": Pv, "Q": Qv})
    assert np.allclose(dense, Pv * (Qv @ Pv), atol=1e-14)
    assert np.isclose(ones, Pv.sum(), atol=1e-14)
    assert np.allclose(diag, np.diag(np.diag(Pv @ Qv)) @ (Pv @ Qv + Pv), atol=1e-13)


# --- statistics: unbiasedness within k standard errors, and the variance law -------------

def _batch_gradients(p, W_A, W_B, n, R, negatives, seed):
    fn = batch_function(p, ("pos", "neg"), n, negatives)
    rng = np.random.default_rng(seed)
    XA, XB = sample_pairs(p.A, p.B, p.A_xi, p.B_xi, None, n * R, rng)  # R independent batches
    out = np.empty((R, W_A.size + W_B.size))
    for r in range(R):
        gA, gB = fn.grad(W_A, W_B, XA[r * n:(r + 1) * n], XB[r * n:(r + 1) * n])
        out[r] = np.concatenate([gA.ravel(), gB.ravel()])
    return out


def _max_z(G: np.ndarray, g: np.ndarray) -> float:
    return float(np.max(np.abs(G.mean(0) - g) / (G.std(0, ddof=1) / np.sqrt(len(G)))))


def test_u_statistic_is_unbiased_and_v_statistic_is_caught():
    """Max over D entries of |z|; Bonferroni at family-wise α = 1e-3 gives k = Φ⁻¹(1 − α/2D)."""
    p = numerics.default_problem()
    W_A, W_B = numerics.random_init(p, 0.5, 3)
    dA, dB = numerics.flow_function(p)(W_A, W_B)
    g = -np.concatenate([dA.ravel(), dB.ravel()])
    k = norm.ppf(1 - 1e-3 / (2 * g.size))
    assert _max_z(_batch_gradients(p, W_A, W_B, 4, 3000, "u", 0), g) <= k
    # Keeping the diagonal biases the mean by O(1/n): the same test must reject it.
    assert _max_z(_batch_gradients(p, W_A, W_B, 4, 3000, "v", 0), g) > k


def test_variance_follows_the_exact_law():
    r"""Hoeffding: $n\,\mathbb E\|\hat g - g\|^2 = p + q/(n-1)$ exactly. Fit on n = 4, 16; predict n = 64."""
    p = numerics.default_problem()
    W_A, W_B = numerics.random_init(p, 0.5, 3)
    dA, dB = numerics.flow_function(p)(W_A, W_B)
    g = -np.concatenate([dA.ravel(), dB.ravel()])
    stats = {}
    for n, R in ((4, 3000), (16, 1500), (64, 800)):
        v = n * np.sum((_batch_gradients(p, W_A, W_B, n, R, "u", n) - g) ** 2, axis=1)
        stats[n] = (v.mean(), v.std(ddof=1) / np.sqrt(R))
    (m4, s4), (m16, s16), (m64, s64) = stats[4], stats[16], stats[64]
    q = (m4 - m16) / (1 / 3 - 1 / 15)
    pp = m16 - q / 15
    pred = pp + q / 63
    # Prediction error = linear combination of the two fitted means: its SE by propagation.
    a, b = (1 / 63 - 1 / 15) / (1 / 3 - 1 / 15), 1 - (1 / 63 - 1 / 15) / (1 / 3 - 1 / 15)
    se = np.sqrt((a * s4) ** 2 + (b * s16) ** 2 + s64**2)
    assert abs(m64 - pred) <= 4 * se, (m64, pred, se)
    assert q > 0 and pp > 0


@pytest.mark.parametrize("bad,field", [({"n": 1}, "batch"), ({"negatives": "w"}, "negatives"),
                                       ({"terms": ("pos", "nope")}, "nope")])
def test_bad_input_names_the_field(bad, field):
    kw = {"terms": ("pos", "neg"), "n": 8} | bad
    with pytest.raises(ValueError, match=field):
        batch_function(numerics.default_problem(), **kw)


def test_pos_only_accepts_a_batch_of_one():
    fn = batch_function(numerics.default_problem(), ("pos",), 1)
    assert fn.n == 1


# --- lifting beyond the built-in terms: linear and quartic negatives, and what it refuses ----

def _s() -> sp.Expr:
    return (S.W_A * S.x_A).T * (S.W_B * S.x_B_neg)


def _lifted_definition(ell: sp.Expr) -> sp.Expr:
    """Σ_{i≠j} ℓ(row i, row j) / (n(n−1)), entry by entry."""
    e = theory.explicit(ell, DIMS)
    XA, XB = theory.entries(tb.X_A, N_SMALL, 2), theory.entries(tb.X_B, N_SMALL, 2)
    xa, xb = theory.entries(S.x_A, 2, 1), theory.entries(S.x_B_neg, 2, 1)
    pairs = [(i, j) for i in range(N_SMALL) for j in range(N_SMALL) if i != j]
    return sp.expand(sum(e.xreplace({xa[k]: XA[i, k] for k in range(2)} | {xb[k]: XB[j, k] for k in range(2)})
                         for i, j in pairs) / len(pairs))


@pytest.mark.parametrize("power", [1, 4])
def test_lift_of_other_powers_matches_the_definition(power):
    """p = 1 (a term linear in the negative: needs 𝟙𝟙ᵀ) and p = 4 (a 4-fold Hadamard product)."""
    alpha, beta = -1 / (tb.n * (tb.n - 1)), 1 / (tb.n * (tb.n - 1))
    ell = tb.trace_form(_s() ** power if power > 1 else _s())
    L = _lifted_definition(ell)
    assert sp.expand(explicit(tb.lift(ell, alpha, beta)) - L) == 0
    g = tb.lift(theory.matrix_gradient(ell, S.W_A), alpha, beta)
    want = theory.entries(S.W_A, 1, 2).applyfunc(lambda e: sp.diff(L, e))
    assert (explicit(g) - want).applyfunc(sp.expand) == sp.zeros(1, 2)
    # And the staged compiler evaluates both like the explicit expansion does.
    rng = np.random.default_rng(power)
    vals = {"W_A": rng.standard_normal((1, 2)), "W_B": rng.standard_normal((1, 2)),
            "X_A": rng.standard_normal((N_SMALL, 2)), "X_B": rng.standard_normal((N_SMALL, 2)), "n": float(N_SMALL)}
    dims = {S.m: 1, S.d_A: 2, S.d_B: 2, tb.n: N_SMALL}
    loss, grad = compile_staged({"loss": tb.lift(ell, alpha, beta), "grad": g}, dims)(vals)
    sub = {}
    for sym in (S.W_A, S.W_B, tb.X_A, tb.X_B):
        E = theory.entries(sym, *vals[sym.name].shape)
        sub |= {E[i, j]: vals[sym.name][i, j] for i, j in np.ndindex(*E.shape)}
    assert np.isclose(loss, float(L.xreplace(sub)), rtol=1e-12, atol=1e-12)
    assert np.allclose(grad, np.array(want.xreplace(sub), dtype=float), rtol=1e-12, atol=1e-12)


def test_lift_refuses_what_it_cannot_sum():
    """A scalar in two samples of one view (|W_A x_A|²) has no two-index lift: an error, not a guess."""
    ell = tb.trace_form((S.W_A * S.x_A).T * (S.W_A * S.x_A))
    with pytest.raises(NotImplementedError, match="one view"):
        tb.lift(ell, 1 / tb.n, 0)
    with pytest.raises(NotImplementedError, match="one index"):
        tb.lift(theory.matrix_gradient(ell, S.W_A), 1 / tb.n, 0)


def test_re_registering_a_term_is_never_served_from_a_stale_cache():
    neg = theory.get_term("neg")
    p = numerics.default_problem()
    W_A, W_B = numerics.random_init(p, 0.5, 0)
    XA, XB = sample_pairs(p.A, p.B, p.A_xi, p.B_xi, None, 6, np.random.default_rng(0))
    try:
        theory.register_term("user_neg", neg.expr, per_sample=neg.per_sample)
        once = batch_function(p, ("user_neg",), 6)(W_A, W_B, XA, XB)[0]
        theory.register_term("user_neg", 2 * neg.expr, per_sample=2 * neg.per_sample, replace=True)
        twice = batch_function(p, ("user_neg",), 6)(W_A, W_B, XA, XB)[0]
        assert twice == pytest.approx(2 * once, rel=1e-12)
    finally:
        theory.unregister_term("user_neg")
