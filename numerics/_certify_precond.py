r"""A Kronecker preconditioner for the matrix-free certificate (`_certify_mf`) on THEORY §8's subspace.

On the invariant subspace (coordinates $Z = WQ$, isotropic or no noise, terms among pos, neg, wd) the
curvature $B = -PJP + c(I-P)$ is dominated by the second derivative of `neg` in one view at a time,
$$K[E_A] = \lambda\,H_B E_A \tilde\Sigma_A + \mu E_A,\qquad H_B = Z_B\tilde\Sigma_B Z_B^\top,\quad
\tilde\Sigma_A = Q_A^\top\Sigma_A Q_A$$
(likewise for view $B$): $K = \lambda\,H_B\otimes\tilde\Sigma_A + \mu I$. On the rows outside range$(A)$
(THEORY §8's $Y$ block, where $\tilde\Sigma_A = \sigma_A^2$) $B = K$ up to terms of the size of $Y$: the
bottom of the spectrum, the clustered noise block $\lambda\sigma_A^2 H_B\otimes I$, is $K$'s. At the
converged `benchmarks/peers.py` instances the spectrum of $K^{-1}B$ on range $P$ lies in $[1, 2]$ while
$B$'s spans a ratio of 600-730. $K^{-1}$ costs two $m\times m$ and two $(r+q)\times(r+q)$ products in the
eigenbases of $H_B$ and $\tilde\Sigma_A$ (computed once). The preconditioner is
$T = P (K + \delta)^{-1} P + (I-P)/c$, symmetric positive definite, with $\delta = $ `DELTA`$\cdot c$: where
$K$ vanishes (small $W$ on a plateau, where the coupling of `pos` dominates $B$; the moves along
$\ker\Sigma$ that $P$ removes) $T$ does not amplify by more than $1/\delta$.

$T$ only steers the search; every number the certificate uses is computed with $B$ itself:

* **Smallest eigenpair** by a generalized Davidson method: Rayleigh-Ritz of $B$ on a basis grown by
  $T r$ ($r = Bx - \theta x$, the residual of the current Ritz pair), from the same fixed start vector
  as Lanczos. It stops when $\|r\| \le$ `tol`$\cdot|\theta|$ (ARPACK's criterion) and returns $\theta$ with
  the residual of a fresh product $Bx$. The Ritz values are Rayleigh quotients of $B$, so the certificate's
  tests (an unstable direction proven by $x^\top Bx < -\tau$; $\gamma = \theta - \|r\|$) are unchanged.
  If it does not converge within `MAX_PRODUCTS` products (a state where $K$ is a poor model of $B$),
  the caller falls back to Lanczos.
* **Newton distance** by conjugate gradients preconditioned with $T$; the bound
  $\|\delta\| + \|B\delta - Pf\|/\gamma$ uses the true residual.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ._problem import Problem

Op = Callable[[np.ndarray], np.ndarray]
#: δ/c. Products of Davidson at the converged peers.py states (d, r=m) = (512, 8), (1024, 16), (4096, 32), then at
#: two d = 200, m = 6 plateau states (pos + neg, σ = 0.1: random_init 1e-3, and t = 3 from 1e-2): δ = 0: 24, 26, 35,
#: gave up (400), gave up; 1e-4: 26, 28, 35, 40, 119; 1e-3: 30, 33, 46, 39, 54; 1e-2: 45, 67, 100, 38, 29.
DELTA = 1e-4
#: Davidson basis size before a thick restart, and the Ritz vectors kept at a restart.
MAX_BASIS, KEEP = 40, 8
#: Products of B after which Davidson gives up (the caller then runs Lanczos, the path for any state).
MAX_PRODUCTS = 400


def kronecker_preconditioner(p: Problem, names: tuple[str, ...], Z_A: np.ndarray, Z_B: np.ndarray,
                             P: Op, c: float) -> Op | None:
    r"""$T = P(K + \delta)^{-1}P + (I-P)/c$ of the module docstring for the subspace problem `p` at $(Z_A, Z_B)$;
    None when there is no `neg` term ($K$ would carry no curvature)."""
    if "neg" not in names or not p.lam > 0:
        return None
    mu = p.mu if "wd" in names else 0.0
    m, nA = Z_A.shape
    H_A, H_B = Z_A @ p.Sigma_A @ Z_A.T, Z_B @ p.Sigma_B @ Z_B.T
    blocks = []
    for H, S in ((H_B, p.Sigma_A), (H_A, p.Sigma_B)):
        h, U = np.linalg.eigh((H + H.T) / 2)
        s, V = np.linalg.eigh((S + S.T) / 2)
        k = p.lam * np.outer(np.clip(h, 0, None), np.clip(s, 0, None)) + mu  # K's eigenvalues at u_i v_jᵀ
        blocks.append((U, V, 1.0 / (k + DELTA * c)))
    split = m * nA

    def T(v: np.ndarray) -> np.ndarray:
        pv = P(v)
        out = [U @ ((U.T @ E @ V) * inv) @ V.T
               for (U, V, inv), E in zip(blocks, (pv[:split].reshape(m, nA), pv[split:].reshape(m, -1)))]
        return P(np.concatenate([out[0].ravel(), out[1].ravel()])) + (v - pv) / c

    return T


def davidson_smallest(B: Op, T: Op, n: int, tol: float, tau: float) -> tuple[float, np.ndarray, float] | None:
    r"""`(θ, x, ‖Bx - θx‖)`: the smallest Ritz pair of $B$, the residual from a fresh product; None if not
    converged within `MAX_PRODUCTS` products. Converged: $\|r\| \le \max(\mathrm{tol}\,|\theta|, \tau)$
    ($\tau$, the rounding level of $B$, for a flat $\theta \approx 0$ that no relative test can reach)."""
    x = np.random.default_rng(1).standard_normal(n)  # Lanczos's start vector: same state, same certificate
    V, BV, H = np.empty((n, MAX_BASIS)), np.empty((n, MAX_BASIS)), np.empty((MAX_BASIS, MAX_BASIS))
    V[:, 0] = x / np.linalg.norm(x)
    BV[:, 0] = B(V[:, 0])
    H[0, 0], k, products = V[:, 0] @ BV[:, 0], 1, 1  # H = VᵀBV, grown by one row and column a product
    while products < MAX_PRODUCTS:
        w, S = np.linalg.eigh(H[:k, :k])
        theta, x = float(w[0]), V[:, :k] @ S[:, 0]
        r = BV[:, :k] @ S[:, 0] - theta * x
        if np.linalg.norm(r) <= max(tol * abs(theta), tau):
            x = x / np.linalg.norm(x)
            Bx = B(x)  # the residual the certificate trusts: not the recurrence's, a product of B
            return float(x @ Bx), x, float(np.linalg.norm(Bx - (x @ Bx) * x))
        if k == MAX_BASIS:  # thick restart on the lowest Ritz vectors: orthonormal (S is), H diagonal
            V[:, :KEEP], BV[:, :KEEP] = V[:, :k] @ S[:, :KEEP], BV[:, :k] @ S[:, :KEEP]
            H[:KEEP, :KEEP], k = np.diag(w[:KEEP]), KEEP
        t = T(r)
        for _ in range(2):  # twice is enough (Kahan): t ⊥ V to rounding
            t = t - V[:, :k] @ (V[:, :k].T @ t)
        size = np.linalg.norm(t)
        if not size > 1e-12 * np.linalg.norm(r):  # T r inside the basis already: no progress possible
            return None
        V[:, k] = t / size
        BV[:, k] = B(V[:, k])
        H[: k + 1, k] = H[k, : k + 1] = V[:, : k + 1].T @ BV[:, k]
        k, products = k + 1, products + 1
    return None
