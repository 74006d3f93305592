"""Lazy trajectories on the reduced path: W rebuilt on access equals the eager reconstruction
and the full-state integration; memory is the reduced state's; scalar isotropic noise."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from cdyn import numerics
from cdyn.numerics._problem import scaled_identity
from cdyn.numerics._trajectory import Frames


@pytest.fixture(scope="module")
def runs():
    p = numerics.random_problem((2.0, 1.0, 0.5), (1.6, 1.1, 0.6), d_A=40, d_B=30, m=3, noise_A=0.2, noise_B=0.1,
                                seed=3)
    W = numerics.random_init(p, 0.05, seed=1)
    red = numerics.integrate(p, *W, 8.0, path="reduced", method="DOP853", rtol=1e-10, atol=1e-13, n_points=41)
    return p, W, red, None


def _scipy_full(p, W, t):
    """The reference: SciPy `solve_ivp` on the full form, no fast path."""
    from scipy.integrate import solve_ivp
    fn = numerics.flow_function(p, ("pos", "neg"), path="full")
    sol = solve_ivp(fn.vector_field(), (0.0, t[-1]), np.concatenate([W[0].ravel(), W[1].ravel()]), t_eval=t,
                    method="DOP853", rtol=1e-12, atol=1e-14)
    n = p.m * p.d_A
    return sol.y[:n].T.reshape(-1, p.m, p.d_A), sol.y[n:].T.reshape(-1, p.m, p.d_B)


def test_reduced_trajectory_is_lazy_and_small(runs):
    p, _, red, _ = runs
    assert red.path == "reduced" and red.lazy
    assert isinstance(red.W_A, Frames) and red.W_A.shape == (41, 3, 40) and red.W_B.shape == (41, 3, 30)
    n_red = red.W_A.ys.shape[1]
    assert n_red == 2 * 3 * (3 + 3)  # 2m(r+q) per sample, q = m here
    assert red.W_A.ys.nbytes == 41 * n_red * 8 < red.W_A.nbytes


def test_frames_equal_the_full_flow(runs):
    p, W, red, _ = runs
    WA, WB = _scipy_full(p, W, red.t)
    scale = np.abs(WA).max()
    np.testing.assert_allclose(np.asarray(red.W_A), WA, atol=1e-8 * scale)
    np.testing.assert_allclose(red.W_B, WB, atol=1e-8 * scale)


def test_indexing_forms_agree_with_the_formed_array(runs):
    _, _, red, _ = runs
    full = np.asarray(red.W_A)
    for key in (0, -1, 7, np.int64(3), slice(None, None, 10), slice(5, 9), np.array([1, 4, 40]),
                np.arange(41) % 3 == 0, (-1, 2), (slice(0, 3), 1, slice(None, 5))):
        np.testing.assert_array_equal(red.W_A[key], full[key])
    for k, frame in enumerate(red.W_A):
        np.testing.assert_array_equal(frame, full[k])
    assert len(red.W_A) == 41 and len(list(zip(red.W_A, red.W_B))) == 41
    np.testing.assert_array_equal(red.W_A**2, full**2)
    np.testing.assert_array_equal(np.abs(red.W_A).max(axis=(1, 2)), np.abs(full).max(axis=(1, 2)))
    assert np.all(np.isfinite(red.W_A)) and np.sum(red.W_A) == np.sum(full)


def test_at_save_and_pickle(runs, tmp_path):
    p, _, red, _ = runs
    a, b = red.at(red.t[5])
    np.testing.assert_allclose(a, red.W_A[5], atol=1e-12)
    np.savez(tmp_path / "w.npz", W_A=red.W_A, W_B=red.W_B)
    with np.load(tmp_path / "w.npz") as z:
        np.testing.assert_array_equal(z["W_A"], np.asarray(red.W_A))
    fa, fb = red.frames()
    assert isinstance(fa, np.ndarray) and fa.shape == (41, 3, 40) and fb.shape == (41, 3, 30)
    back = pickle.loads(pickle.dumps(red.W_B))
    np.testing.assert_array_equal(np.asarray(back), np.asarray(red.W_B))


def test_series_on_a_lazy_trajectory_equals_the_eager_one(runs):
    p, _, red, _ = runs
    eager = numerics.Trajectory(red.t, np.asarray(red.W_A), np.asarray(red.W_B), red.status, red.t_stop, red.nfev,
                                red.method, red.terms, path="full")
    s1, s2 = numerics.series(p, red), numerics.series(p, eager)
    for k in s1:
        np.testing.assert_array_equal(s1[k], s2[k])


def _held_bytes(x: np.ndarray) -> int:
    """Bytes of the buffer an array view finally reads."""
    while getattr(x, "base", None) is not None:
        x = x.base
    return x.nbytes


def test_scalar_isotropic_noise_is_sigma_I_without_a_dense_matrix():
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((50, 3)), rng.standard_normal((40, 3))
    p = numerics.Problem(A=A, B=B, A_xi=0.3, B_xi=0.0, m=2)
    dense = numerics.Problem(A=A, B=B, A_xi=0.3 * np.eye(50), m=2)
    assert p.A_xi.shape == (50, 50) and p.B_xi.shape == (40, 0) and _held_bytes(p.A_xi) == 8 * 99
    assert _held_bytes(dense.A_xi) == 8 * 99  # σI given densely is not kept
    np.testing.assert_array_equal(p.A_xi, 0.3 * np.eye(50))
    np.testing.assert_allclose(p.Sigma_A, A @ A.T + 0.09 * np.eye(50), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(p.Sigma_B, B @ B.T, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(p.C, A @ B.T, rtol=1e-14, atol=1e-15)
    thin = numerics.Problem(A=A, B=B, A_xi=0.3 * np.eye(50)[:, :49], m=2)  # not square: a factor, kept as given
    assert thin.A_xi.shape == (50, 49) and thin.A_xi.base is None
    assert "isotropic 0.3" in repr(p)
    assert _held_bytes(p.replace(lam=2.0).A_xi) == 8 * 99
    with pytest.raises(ValueError, match="A_xi: must be >= 0"):
        numerics.Problem(A=A, B=B, A_xi=-0.1)
    with pytest.raises(TypeError, match="B_xi: expected a noise level"):
        numerics.Problem(A=A, B=B, B_xi=True)
    with pytest.raises(ValueError, match="A_xi: must be finite"):
        numerics.Problem(A=A, B=B, A_xi=float("inf"))


def test_scaled_identity_view_is_read_only_and_exact():
    I3 = scaled_identity(6, 2.5)
    np.testing.assert_array_equal(I3, 2.5 * np.eye(6))
    assert not I3.flags.writeable
    np.testing.assert_array_equal(np.arange(12.0).reshape(2, 6) @ I3, 2.5 * np.arange(12.0).reshape(2, 6))


def test_rank_C_from_the_core_at_large_size():
    rng = np.random.default_rng(1)
    U = numerics.random_orthonormal(rng, 300, 4)
    A = U @ np.diag([2.0, 1.0, 0.5, 0.0])  # rank 3 signal
    B = numerics.random_orthonormal(rng, 260, 4)
    p = numerics.Problem(A=A, B=B, A_xi=0.1, m=4)
    assert p.d_A * p.d_B > 2**16 and p.rank_C == 3 == numerics._problem.rank_of(A @ B.T)
