r"""Tests for the symmetric InfoNCE (CLIP) loss in `numerics._clip`.

Three independent checks of the vectorised code: central finite differences
for the gradient, a naive pure-Python double loop for the value, and the
closed form $\log(1 + (n-1)e^{-\tau})$ for perfectly matched orthogonal
features.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdyn.numerics._clip import clip_loss, clip_loss_and_grad

# No example database: it would write .hypothesis/ into the shared checkout,
# and a failure still prints its reproducing example.
_DB = None

def _problem(seed: int, n: int, m: int, d_A: int, d_B: int):
    r"""Random weights and data with $O(1)$ logits, so the loss is not saturated
    and the gradient is not vanishingly small (a relative error needs that)."""
    rng = np.random.default_rng(seed)
    W_A = rng.standard_normal((m, d_A)) / math.sqrt(d_A)
    W_B = rng.standard_normal((m, d_B)) / math.sqrt(d_B)
    X_A = rng.standard_normal((n, d_A))
    X_B = rng.standard_normal((n, d_B))
    return W_A, W_B, X_A, X_B


def _fd_gradient(W_A, W_B, X_A, X_B, tau, normalize):
    r"""Central differences in every entry of $W_A$, $W_B$ and in $\log\tau$."""
    theta = np.concatenate([W_A.ravel(), W_B.ravel(), [math.log(tau)]])
    split = W_A.size

    def f(th: np.ndarray) -> float:
        wa = th[:split].reshape(W_A.shape)
        wb = th[split:-1].reshape(W_B.shape)
        return clip_loss(wa, wb, X_A, X_B, math.exp(th[-1]), normalize)

    g = np.empty_like(theta)
    for k in range(theta.size):
        # Step scaled to the entry so the relative perturbation is ~1e-6.
        h = 1e-6 * max(1.0, abs(theta[k]))
        tp, tm = theta.copy(), theta.copy()
        tp[k] += h
        tm[k] -= h
        g[k] = (f(tp) - f(tm)) / (2.0 * h)
    return g


@settings(deadline=None, max_examples=40, database=_DB)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 6),
    m=st.integers(1, 4),
    d_A=st.integers(1, 5),
    d_B=st.integers(1, 5),
    log_tau=st.floats(-2.0, 1.5),
    normalize=st.booleans(),
)
def test_gradient_matches_central_differences(seed, n, m, d_A, d_B, log_tau, normalize):
    # Normalised features in fewer than 2 dimensions are all +-u: the loss
    # can be locally constant (e.g. all logits equal), the gradient exactly 0,
    # and a *relative* error meaningless. Lift such draws to 2 dimensions.
    if normalize:
        m, d_A, d_B = max(m, 2), max(d_A, 2), max(d_B, 2)
    W_A, W_B, X_A, X_B = _problem(seed, n, m, d_A, d_B)
    tau = math.exp(log_tau)
    _, dW_A, dW_B, dlt = clip_loss_and_grad(
        W_A, W_B, X_A, X_B, tau, normalize=normalize, learn_tau=True
    )
    analytic = np.concatenate([dW_A.ravel(), dW_B.ravel(), [dlt]])
    numeric = _fd_gradient(W_A, W_B, X_A, X_B, tau, normalize)
    # Central differences err by O(h^2 |L'''|) ~ 1e-12 (truncation) plus
    # O(eps_mach |L| / h) ~ 1e-16 * 2 / 1e-6 ~ 1e-10 (rounding), for a loss of
    # size log(n) ~ 1 and gradients of size ~0.1-1. 1e-6 leaves a 1000x margin
    # over that yet is far below any real bug (a wrong term is O(1) relative).
    # The denominator is floored at 1e-3: below it the ~1e-10 absolute FD
    # rounding would dominate, and 1e-6 * 1e-3 is still far below any bug.
    rel = np.linalg.norm(analytic - numeric) / max(np.linalg.norm(analytic), 1e-3)
    assert rel <= 1e-6, f"relative FD error {rel:.3e}"


def _naive_loss(W_A, W_B, X_A, X_B, tau, normalize, eps) -> float:
    r"""Pure-Python oracle: explicit loops, `math.exp`/`math.log`, i.e.
    $-\log \mathrm{softmax}$ straight from the definition, with the guarded
    norm $\sqrt{\lVert f\rVert^2 + \epsilon^2}$ (part of the definition: with
    $m = 1$ a feature can be ~1e-4, where $\epsilon^2/f^2$ is not negligible).
    Only valid at moderate logits (no overflow guard)."""
    n, m = len(X_A), len(W_A)

    def feats(W, X):
        out = []
        for x in X:
            f = [sum(float(W[p][k]) * float(x[k]) for k in range(len(x))) for p in range(m)]
            if normalize:
                r = math.sqrt(sum(v * v for v in f) + eps * eps)
                f = [v / r for v in f]
            out.append(f)
        return out

    fa, fb = feats(W_A, X_A), feats(W_B, X_B)
    S = [[tau * sum(fa[i][p] * fb[j][p] for p in range(m)) for j in range(n)]
         for i in range(n)]
    row = col = 0.0
    for i in range(n):
        row -= math.log(math.exp(S[i][i]) / sum(math.exp(S[i][j]) for j in range(n)))
        col -= math.log(math.exp(S[i][i]) / sum(math.exp(S[j][i]) for j in range(n)))
    return 0.5 * (row / n + col / n)


@settings(deadline=None, max_examples=30, database=_DB)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 7),
    m=st.integers(1, 4),
    d_A=st.integers(1, 4),
    d_B=st.integers(1, 4),
    tau=st.floats(0.05, 5.0),
    normalize=st.booleans(),
)
def test_loss_matches_naive_double_loop(seed, n, m, d_A, d_B, tau, normalize):
    W_A, W_B, X_A, X_B = _problem(seed, n, m, d_A, d_B)
    eps = 1e-8
    expected = _naive_loss(W_A, W_B, X_A, X_B, tau, normalize, eps)
    got = clip_loss(W_A, W_B, X_A, X_B, tau, normalize=normalize, eps=eps)
    # Both are short floating-point sums of O(10) logits, each good to
    # ~1e-15 relative; 1e-10 is loose for both yet catches any wrong term.
    assert got == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert clip_loss_and_grad(W_A, W_B, X_A, X_B, tau, normalize, eps=eps)[0] == got


@pytest.mark.parametrize(
    "normalize,tau,scale",
    [(True, 1e4, 1.0), (True, 1e8, 1.0), (False, 1.0, 1e3), (False, 50.0, 1e4)],
)
def test_finite_at_huge_logits(normalize, tau, scale):
    W_A, W_B, X_A, X_B = _problem(7, 6, 3, 4, 5)
    W_A, W_B = scale * W_A, scale * W_B
    loss, dW_A, dW_B, dlt = clip_loss_and_grad(W_A, W_B, X_A, X_B, tau, normalize, learn_tau=True)
    assert math.isfinite(loss) and loss >= 0.0
    assert np.all(np.isfinite(dW_A)) and np.all(np.isfinite(dW_B)) and math.isfinite(dlt)
    # As logits blow up the log-sum-exp tends to the max, and
    # 0 <= logsumexp(v) - max(v) <= log n, so the loss is the hinge-like
    # (1/2n) sum_i [max_j S_ij - S_ii + max_j S_ji - S_ii] up to log n.
    fa, fb = X_A @ W_A.T, X_B @ W_B.T
    if normalize:
        fa = fa / np.linalg.norm(fa, axis=1, keepdims=True)
        fb = fb / np.linalg.norm(fb, axis=1, keepdims=True)
    S = tau * fa @ fb.T
    d = np.diag(S)
    hinge = 0.5 * (np.mean(S.max(axis=1) - d) + np.mean(S.max(axis=0) - d))
    assert hinge - 1e-9 * abs(S).max() <= loss <= hinge + math.log(6) + 1e-9 * abs(S).max()


def test_overflowing_logits_fail_loudly():
    # Beyond float range there is no finite answer; a NaN would silently
    # poison training, so the module raises instead.
    W_A, W_B, X_A, X_B = _problem(7, 4, 2, 3, 3)
    with pytest.raises(FloatingPointError):
        clip_loss_and_grad(1e160 * W_A, 1e160 * W_B, X_A, X_B, 1.0)


def test_zero_feature_row_stays_finite_when_normalized():
    # The eps guard: an all-zero feature row maps to g = 0, not 0/0.
    W_A, W_B, X_A, X_B = _problem(2, 4, 2, 3, 3)
    X_A[1] = 0.0
    out = clip_loss_and_grad(W_A, W_B, X_A, X_B, 3.0, True, True)
    assert all(np.all(np.isfinite(v)) for v in out)


@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize("normalize", [False, True])
def test_matched_orthogonal_features_exact_value(n, normalize):
    # X_A = X_B = Q (orthogonal) and W = I give logits tau * Q Q^T = tau * I:
    # every row/column is [tau on the diagonal, 0 elsewhere], so each cross
    # entropy is log(1 + (n-1) e^{-tau}) exactly.
    Q, _ = np.linalg.qr(np.random.default_rng(n).standard_normal((n, n)))
    I = np.eye(n)
    previous = math.inf
    for tau in [0.1, 1.0, 5.0, 20.0, 40.0, 100.0, 1e3]:
        exact = math.log1p((n - 1) * math.exp(-tau))
        got = clip_loss(I, I, Q, Q, tau, normalize=normalize)
        # atol: even a log(1 + x) without log1p errs by <= 1 ulp of 1 ~ 2e-16;
        # rtol covers the O(1e-16 * tau) off-diagonal rounding of Q Q^T.
        assert got == pytest.approx(exact, rel=1e-9, abs=1e-15)
        assert got <= previous
        previous = got
    assert previous == 0.0  # e^{-1000} underflows: the limit is reached


def test_swapping_views_swaps_gradients():
    # The loss is symmetric in (A, B): the row and column terms trade places.
    W_A, W_B, X_A, X_B = _problem(3, 5, 3, 2, 4)
    la, ga, gb, ta = clip_loss_and_grad(W_A, W_B, X_A, X_B, 1.7, True, True)
    lb, hb, ha, tb = clip_loss_and_grad(W_B, W_A, X_B, X_A, 1.7, True, True)
    assert la == pytest.approx(lb, rel=1e-13)
    np.testing.assert_allclose(ga, ha, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gb, hb, rtol=1e-12, atol=1e-14)
    assert ta == pytest.approx(tb, rel=1e-12)
    assert clip_loss_and_grad(W_A, W_B, X_A, X_B, 1.7)[3] is None


@pytest.mark.parametrize(
    "bad,field",
    [
        ({"tau": 0.0}, "tau"),
        ({"tau": float("nan")}, "tau"),
        ({"W_B": np.ones((2, 4))}, "W_B"),
        ({"X_A": np.ones((5, 3))}, "X_A"),
        ({"X_B": np.ones((4, 4))}, "X_A and X_B"),
        ({"eps": 0.0}, "eps"),
    ],
)
def test_bad_inputs_name_the_field(bad, field):
    W_A, W_B, X_A, X_B = _problem(0, 5, 3, 2, 4)
    kw = dict(W_A=W_A, W_B=W_B, X_A=X_A, X_B=X_B, tau=1.0) | bad
    with pytest.raises(ValueError, match=field):
        clip_loss_and_grad(**kw)
