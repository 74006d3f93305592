"""C2: the expectation step is exact, and the population loss is the mean of per-sample terms."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from cdyn import numerics
from cdyn import theory
from cdyn.numerics._sampling import sample_pairs
from tests.helpers import problems, weights

S = theory.symbols


def _moment_oracle(poly: sp.Expr, groups: dict[str, list[sp.Matrix]], second) -> sp.Expr:
    """Entry-wise E[...] of a polynomial whose random entries come in independent groups.

    Each group must appear with degree 0 or 2 in every monomial (degree 1 has mean 0);
    `second(u_entry, v_entry)` gives E[u v] within a group.
    """
    rand = [e for mats in groups.values() for M in mats for e in M]
    out = sp.S.Zero
    for monom, coeff in sp.Poly(sp.expand(poly), *rand).terms():
        powers = dict(zip(rand, monom))
        value = coeff
        for mats in groups.values():
            factors = [e for M in mats for e in M for _ in range(powers[e])]
            if len(factors) == 1:
                value = 0
            elif len(factors) == 2:
                value *= second(*factors)
            elif factors:
                raise NotImplementedError("higher moments")
        out += value
    return sp.expand(out)


@pytest.mark.parametrize("dims", [(1, 1, 1), (2, 2, 1), (1, 2, 3), (2, 3, 2)])
def test_population_terms_equal_entrywise_expectation(dims):
    m, d_A, d_B = dims
    D = {S.m: m, S.d_A: d_A, S.d_B: d_B}
    xA, xB, xN = theory.entries(S.x_A, d_A, 1), theory.entries(S.x_B, d_B, 1), theory.entries(S.x_B_neg, d_B, 1)
    SA, SB, C = theory.entries(S.Sigma_A, d_A, d_A), theory.entries(S.Sigma_B, d_B, d_B), theory.entries(S.C, d_A, d_B)
    index = {e: ("A", i) for i, e in enumerate(xA)} | {e: ("B", i) for i, e in enumerate(xB)} | {
        e: ("N", i) for i, e in enumerate(xN)}

    def second(u, v):
        (gu, i), (gv, j) = index[u], index[v]
        if gu == gv:
            return (SA if gu == "A" else SB)[i, j]
        return C[i, j] if gu == "A" else C[j, i]

    groups = {"pair": [xA, xB], "negative": [xN]}
    for name in ("pos", "neg"):
        term = theory.get_term(name)
        expected = _moment_oracle(theory.explicit(term.per_sample, D), groups, second)
        assert sp.expand(theory.explicit(term.expr, D) - expected) == 0, name


def _mat(x):
    return x if isinstance(x, sp.MatrixBase) else sp.Matrix([[x]])


@pytest.mark.parametrize("dims", [(1, 1, 1, 1), (2, 3, 2, 1), (3, 2, 1, 2)])
def test_view_moments_derived_from_data_model(dims):
    d, r, kA, kB = dims
    D = {S.d_A: d, S.d_B: d + 1, S.r: r, S.k_A: kA, S.k_B: kB}
    z, xa, xb = theory.entries(S.z, r, 1), theory.entries(S.xi_A, kA, 1), theory.entries(S.xi_B, kB, 1)
    Sz = theory.entries(S.Sigma_z, r, r)
    where = {e: ("z", i) for i, e in enumerate(z)} | {e: ("a", i) for i, e in enumerate(xa)} | {
        e: ("b", i) for i, e in enumerate(xb)}

    def second(u, v):
        (g, i), (_, j) = where[u], where[v]
        return Sz[i, j] if g == "z" else sp.KroneckerDelta(i, j)

    groups = {"z": [z], "xi_A": [xa], "xi_B": [xb]}
    moments = theory.view_moments()
    for (u, v), derived in moments.items():
        if u == S.x_B_neg:
            continue
        outer = _mat(theory.explicit(S.DATA_MODEL[u] * S.DATA_MODEL[v].T, D))
        want = outer.applyfunc(lambda e: _moment_oracle(e, groups, second))
        got = _mat(theory.explicit(derived, D))
        assert got.shape == want.shape and all(sp.expand(e) == 0 for e in got - want), (u, v)


@settings(max_examples=10)
@given(problems(), st.integers(0, 2**16))
def test_population_loss_equals_monte_carlo_mean(p, seed):
    """Within 5 standard errors of the sample mean, for each term separately."""
    rng = np.random.default_rng(seed)
    n = 20000
    X_A, X_B = sample_pairs(p.A, p.B, p.A_xi, p.B_xi, p.Sigma_z, n, rng)
    _, X_N = sample_pairs(p.A, p.B, p.A_xi, p.B_xi, p.Sigma_z, n, rng)
    W_A, W_B = weights(p, 0.5, seed)
    F_A, F_B, F_N = X_A @ W_A.T, X_B @ W_B.T, X_N @ W_B.T
    samples = {"pos": -(F_A * F_B).sum(1), "neg": 0.5 * (F_A * F_N).sum(1) ** 2}
    for name, ell in samples.items():
        pop = numerics.flow_function(p.replace(lam=1.0), (name,)).loss(W_A, W_B)
        se = ell.std(ddof=1) / np.sqrt(n)
        assert abs(ell.mean() - pop) <= 5 * se + 1e-12, (name, ell.mean(), pop, se)


def test_fourth_moments_are_refused_not_guessed():
    """(x_Aᵀ K x_B)² needs E[x_A x_Aᵀ ⊗ x_B x_Bᵀ] of a *dependent* pair: no 2nd-moment rule."""
    ell = ((S.W_A * S.x_A).T * (S.W_B * S.x_B)) ** 2
    with pytest.raises(NotImplementedError):
        theory.expectation(ell, theory.named_view_moments())
