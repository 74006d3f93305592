r"""Tests for `numerics._sampling.sample_pairs`.

The statistical tests compare empirical second moments with the population
ones, $\Sigma_A = A\Sigma_z A^\top + A_\xi A_\xi^\top$ and
$C = A \Sigma_z B^\top$, entry by entry within 5 standard errors estimated from
the sample itself. They use fixed seeds, so they are deterministic; a 5-SE
miss has probability ~6e-7 per entry under the CLT, so a failure means a bug.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdyn.numerics._sampling import Z_DISTRIBUTIONS, sample_pairs

# No example database: it would write .hypothesis/ into the shared checkout.
_DB = None


def _model(seed: int, d_A: int, d_B: int, r: int, k_A: int, k_B: int, rank_z: int):
    r"""A random anisotropic model; $\Sigma_z = R R^\top$ has rank `rank_z`
    (singular when `rank_z < r`), exercising the eigh-based square root."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d_A, r)) * np.logspace(0, -1, r)
    B = rng.standard_normal((d_B, r)) * np.logspace(0, -1, r)
    A_xi = 0.3 * rng.standard_normal((d_A, k_A))
    B_xi = 0.3 * rng.standard_normal((d_B, k_B))
    R = rng.standard_normal((r, rank_z))
    return A, B, A_xi, B_xi, R @ R.T


def _within_5se(samples: np.ndarray, truth: np.ndarray) -> None:
    r"""`samples` is $(n, \dots)$ i.i.d. draws of a quantity with mean `truth`."""
    n = samples.shape[0]
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(n)
    # Entries with zero variance (e.g. a zero noise and a null direction of a
    # singular Sigma_z) have se = 0; allow them float rounding only.
    slack = 5.0 * se + 1e-12 * (1.0 + np.abs(truth))
    bad = np.abs(mean - truth) > slack
    assert not bad.any(), (
        f"{bad.sum()} entries off by > 5 SE; worst z-score "
        f"{np.max(np.abs(mean - truth) / np.maximum(se, 1e-300)):.2f}"
    )


@settings(deadline=None, max_examples=25, database=_DB)
@given(
    seed=st.integers(0, 2**32 - 1),
    d_A=st.integers(1, 4),
    d_B=st.integers(1, 4),
    r=st.integers(1, 3),
    k_A=st.integers(0, 2),
    k_B=st.integers(0, 2),
    n=st.integers(1, 20),
    z_dist=st.sampled_from(Z_DISTRIBUTIONS),
    sigma_none=st.booleans(),
)
def test_same_seed_same_arrays(seed, d_A, d_B, r, k_A, k_B, n, z_dist, sigma_none):
    A, B, A_xi, B_xi, Sz = _model(seed, d_A, d_B, r, k_A, k_B, r)
    Sz = None if sigma_none else Sz
    X1 = sample_pairs(A, B, A_xi, B_xi, Sz, n, np.random.default_rng(seed), z_dist)
    X2 = sample_pairs(A, B, A_xi, B_xi, Sz, n, np.random.default_rng(seed), z_dist)
    assert X1[0].shape == (n, d_A) and X1[1].shape == (n, d_B)
    np.testing.assert_array_equal(X1[0], X2[0])
    np.testing.assert_array_equal(X1[1], X2[1])
    # A different seed must give different draws (a constant output would pass
    # the equality check above trivially). 64 pairs, because one Rademacher
    # pair without noise takes only 2 values and could repeat by chance.
    Y1 = sample_pairs(A, B, A_xi, B_xi, Sz, 64, np.random.default_rng(seed), z_dist)
    Y2 = sample_pairs(A, B, A_xi, B_xi, Sz, 64, np.random.default_rng(seed + 1), z_dist)
    assert not np.array_equal(Y1[0], Y2[0])


@pytest.mark.parametrize("z_dist", Z_DISTRIBUTIONS)
@pytest.mark.parametrize(
    "seed,d_A,d_B,r,k_A,k_B,rank_z",
    [(1, 3, 4, 2, 3, 2, 2), (2, 4, 2, 3, 0, 1, 1), (3, 2, 3, 3, 2, 0, 3)],
)
def test_second_moments_match_population(z_dist, seed, d_A, d_B, r, k_A, k_B, rank_z):
    A, B, A_xi, B_xi, Sz = _model(seed, d_A, d_B, r, k_A, k_B, rank_z)
    n = 40_000
    X_A, X_B = sample_pairs(A, B, A_xi, B_xi, Sz, n, np.random.default_rng(100 + seed), z_dist)
    # Per-pair outer products are i.i.d. with the population moments as mean.
    _within_5se(X_A[:, :, None] * X_A[:, None, :], A @ Sz @ A.T + A_xi @ A_xi.T)
    _within_5se(X_B[:, :, None] * X_B[:, None, :], B @ Sz @ B.T + B_xi @ B_xi.T)
    _within_5se(X_A[:, :, None] * X_B[:, None, :], A @ Sz @ B.T)
    _within_5se(X_A, np.zeros(d_A))


def test_singular_sigma_z_confines_the_signal():
    # Sigma_z = v v^T: z = c v for a scalar c, so noiseless X_A has rank 1 and
    # every row is a multiple of A v.
    v = np.array([[1.0], [2.0], [-1.0]])
    A = np.random.default_rng(0).standard_normal((4, 3))
    X_A, X_B = sample_pairs(A, A, None, np.zeros((4, 0)), v @ v.T, 50, np.random.default_rng(1))
    assert np.linalg.matrix_rank(X_A, tol=1e-9 * np.abs(X_A).max()) == 1
    Av = (A @ v).ravel()
    resid = X_A - np.outer(X_A @ Av / (Av @ Av), Av)
    assert np.abs(resid).max() <= 1e-12 * np.abs(X_A).max()
    np.testing.assert_array_equal(X_A, X_B)  # same z, same map, no noise


def test_sigma_none_is_identity():
    A = np.random.default_rng(0).standard_normal((3, 2))
    X_none = sample_pairs(A, A, None, None, None, 30, np.random.default_rng(5))
    X_eye = sample_pairs(A, A, None, None, np.eye(2), 30, np.random.default_rng(5))
    np.testing.assert_allclose(X_none[0], X_eye[0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("z_dist", Z_DISTRIBUTIONS)
def test_latent_has_zero_mean_and_unit_variance(z_dist):
    # With A = I_r, no noise and Sigma_z = I, X_A is u itself.
    r, n = 3, 100_000
    U, _ = sample_pairs(np.eye(r), np.eye(r), None, None, None, n, np.random.default_rng(9), z_dist)
    _within_5se(U, np.zeros(r))
    _within_5se(U**2, np.ones(r))
    _within_5se(U[:, :, None] * U[:, None, :], np.eye(r))  # independent coords
    kurt = np.mean(U**4, axis=0)
    if z_dist == "rademacher":
        assert set(np.unique(U)) == {-1.0, 1.0}
        np.testing.assert_array_equal(kurt, 1.0)
    elif z_dist == "student-t":
        # Scaled t_5 has E u^4 = 3 (df-2)/(df-4) = 9: clearly heavier than the
        # Gaussian's 3, showing the law (not just the scale) is t.
        assert np.all(kurt > 5.0)
    else:
        assert np.all(np.abs(kurt - 3.0) < 0.2)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"z_dist": "cauchy"}, "z_dist"),
        ({"n": 0}, r"\bn\b"),
        ({"n": -3}, r"\bn\b"),
        ({"n": 2.5}, r"\bn\b"),
        ({"Sigma_z": -np.eye(2)}, "Sigma_z"),
        ({"Sigma_z": np.eye(3)}, "Sigma_z"),
        ({"Sigma_z": np.array([[1.0, 0.5], [0.0, 1.0]])}, "Sigma_z"),
        ({"B": np.ones((3, 4))}, "B"),
        ({"A_xi": np.ones((2, 1))}, "A_xi"),
    ],
)
def test_bad_arguments_raise_naming_the_field(kwargs, field):
    args = dict(
        A=np.ones((3, 2)), B=np.ones((4, 2)), A_xi=None, B_xi=None,
        Sigma_z=None, n=5, rng=np.random.default_rng(0),
    ) | kwargs
    with pytest.raises(ValueError, match=field):
        sample_pairs(**args)
