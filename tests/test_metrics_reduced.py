"""The O(d r²) forms of the sweep's metrics (THEORY §8) against the dense d×d computations they replace.

`canonical_correlations`/`kappa_limit` read the r×r problem of `isotropic_core` when the noise is
isotropic or zero; `dlog_kappa(_total)` read C through its factors and the structured flow at large d;
`detect_stages` takes the singular values of C from its r×r core. Each is compared here with the dense
oracle it replaced (SVD of the d_A×d_B whitened cross-covariance, the full flow with the d×d moments),
on random instances, to 1e-10 relative.
"""

from __future__ import annotations

import numpy as np
import pytest

from cdyn import numerics
from cdyn.numerics._metrics import _thin, isotropic_core

RTOL = 1e-10


def _instance(d_A: int, d_B: int, r: int, m: int, s_A: object, s_B: object, sigma_z: str, rank_A: int | None,
              seed: int) -> numerics.Problem:
    """Random A, B (A of rank `rank_A` when given), Σ_z identity / random / singular, noise σ (or σI)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d_A, r))
    if rank_A is not None:
        A = rng.standard_normal((d_A, rank_A)) @ rng.standard_normal((rank_A, r))
    B = rng.standard_normal((d_B, r))
    Sz = None
    if sigma_z != "identity":
        V = numerics.random_orthonormal(rng, r, r)
        ev = rng.uniform(0.5, 1.5, r)
        if sigma_z == "singular":
            ev[-1] = 0.0
        Sz = V @ np.diag(ev) @ V.T
    return numerics.Problem(A=A, B=B, A_xi=s_A, B_xi=s_B, Sigma_z=Sz, m=m)


CASES = [  # d_A, d_B, r, m, σ_A, σ_B, Σ_z, rank of A
    (12, 9, 3, 2, 0.3, 0.1, "random", None),
    (10, 10, 4, 4, 0.0, 0.0, "identity", None),  # no noise: pseudo-inverse roots on range(A), range(B)
    (7, 11, 4, 3, 0.2, 0.0, "singular", None),  # Σ_z of rank 3: range(AΣ_zAᵀ) smaller than range(A)
    (3, 5, 4, 2, 0.1, 0.2, "random", None),  # d_A < r
    (40, 30, 5, 3, 1e-3, 0.5, "random", 3),  # A of rank 3 < r
    (6, 6, 2, 2, 0.0, 0.4, "identity", None),
]


def _dense_rho(p: numerics.Problem) -> np.ndarray:
    return np.linalg.svd(numerics.whitened_cross(p), compute_uv=False)[: p.rank_C]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_canonical_correlations_from_the_small_problem(case: tuple, seed: int) -> None:
    p = _instance(*case, seed=seed)
    assert isotropic_core(p) is not None  # the small form is the one under test
    rho, dense = numerics.canonical_correlations(p), _dense_rho(p)
    np.testing.assert_allclose(rho, dense, rtol=RTOL, atol=RTOL * dense[0])
    k = min(p.m, dense.size)
    assert numerics.kappa_limit(p) == pytest.approx((dense[0] / dense[k - 1]) ** 2, rel=RTOL)


def test_noise_given_as_dense_identity_and_factor_noise() -> None:
    """σI passed as a d×d array takes the small form too; a noise factor keeps the dense one (None)."""
    p = _instance(9, 8, 3, 2, 0.3 * np.eye(9), 0.2, "random", None, seed=5)
    assert isotropic_core(p) is not None
    np.testing.assert_allclose(numerics.canonical_correlations(p), _dense_rho(p), rtol=RTOL)
    rng = np.random.default_rng(6)
    q = _instance(9, 8, 3, 2, 0.3 * rng.standard_normal((9, 2)), 0.2, "random", None, seed=6)
    assert isotropic_core(q) is None


def _dense_rate(p: numerics.Problem, W_A: np.ndarray, W_B: np.ndarray, terms: tuple[str, ...]) -> tuple[float, float]:
    """The two terms of d log κ/dt from the full flow and the dense C (the old computation)."""
    dA, dB = numerics.flow_function(p, terms, "full")(W_A, W_B)
    C = np.asarray(p.C)
    M, dM = W_A @ C @ W_B.T, dA @ C @ W_B.T + W_A @ C @ dB.T
    k = min(p.m, p.rank_C)
    U, s, Vt = np.linalg.svd(M)
    return float(U[:, 0] @ dM @ Vt[0] / s[0]), float(U[:, k - 1] @ dM @ Vt[k - 1] / s[k - 1])


@pytest.mark.parametrize("noise", ["isotropic", "factor"])
def test_dlog_kappa_through_the_factors(noise: str) -> None:
    """At d_A·d_B above `THIN_ENTRIES` the rate reads C through A, B and the cheaper flow form."""
    rng = np.random.default_rng(11)
    s_A = 0.2 if noise == "isotropic" else 0.2 * rng.standard_normal((300, 2))
    p = _instance(300, 260, 3, 3, s_A, 0.1, "random", None, seed=11)
    assert _thin(p)
    W_A, W_B = 0.3 * rng.standard_normal((3, 300)), 0.3 * rng.standard_normal((3, 260))
    one, k = _dense_rate(p, W_A, W_B, ("pos", "neg"))
    assert numerics.dlog_kappa_total(p, W_A, W_B) == pytest.approx(one - k, abs=RTOL * (abs(one) + abs(k)))
    split = numerics.dlog_kappa(p, W_A, W_B, ("pos", "neg"))
    for name in ("pos", "neg"):
        one, k = _dense_rate(p, W_A, W_B, (name,))
        assert split[name] == pytest.approx(one - k, abs=RTOL * (abs(one) + abs(k)))


@pytest.mark.parametrize("d", [12, 300])
def test_stage_predictions_use_the_singular_values_of_C(d: int) -> None:
    """`detect_stages`: 2(g_1 - g_k), -2 g_k and the limit equal the dense SVD of C and of K."""
    p = _instance(d, d - 2, 4, 3, 0.1, 0.2, "random", None, seed=3)
    rng = np.random.default_rng(3)
    t = np.linspace(0.0, 1.0, 7)
    tr = numerics.Trajectory(t, rng.standard_normal((7, 3, d)), rng.standard_normal((7, 3, d - 2)), "completed",
                             1.0, 0, "none", ("pos", "neg"))
    st = numerics.detect_stages(p, tr)
    g = np.linalg.svd(np.asarray(p.C), compute_uv=False)
    k = min(p.m, p.rank_C)
    assert st.stage1_predicted == pytest.approx(2 * (g[0] - g[k - 1]), rel=RTOL)
    assert st.stage2_predicted == pytest.approx(-2 * g[k - 1], rel=RTOL)
    rho = _dense_rho(p)
    assert st.kappa_limit == pytest.approx((rho[0] / rho[k - 1]) ** 2, rel=RTOL)
