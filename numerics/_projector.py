r"""The projector of the matrix-free certificate (`_certify_mf`), without a dense basis of the orbit.

$P$ is the orthogonal projector onto the complement of the known flat directions at $Z = (Z_A, Z_B)$
($m\times n_A$, $m\times n_B$): first the row moves along $\ker\Sigma$ are removed,
$V \mapsto V R R^\top$ with $R$ an orthonormal basis of $\mathrm{range}\,\Sigma$ (the operator $\Pi$),
then the tangents of the group orbit at $\hat Z = Z R R^\top$ (those tangents after $\Pi$):

* $GL(m)$: $T(X) = (X\hat Z_A,\, -X^\top \hat Z_B)$, $X \in \mathbb R^{m\times m}$, with
  $T^\top(V_A, V_B) = V_A\hat Z_A^\top - \hat Z_B V_B^\top$ and $T^\top T X = X G_A + G_B X$,
  $G = \hat Z\hat Z^\top$;
* $O(m)$: $T(X) = (X\hat Z_A,\, X\hat Z_B)$, $X^\top = -X$, with $T^\top T X = \tfrac12(XG + GX)$,
  $G = G_A + G_B$.

$P = \Pi - T(T^\top T)^+T^\top\Pi$. The Sylvester operator $T^\top T$ is diagonal in the singular
bases: with $\hat Z_A = U_A S_A V_A^\top$, $\hat Z_B = U_B S_B V_B^\top$ (full $U$, singular values
padded with zeros to $m$), the tangents of $X = u_{B,i}u_{A,j}^\top$,
$t_{ij} = (s_{A,j}\,u_{B,i}v_{A,j}^\top,\ -s_{B,i}\,u_{A,j}v_{B,i}^\top)$, are mutually orthogonal with
$\|t_{ij}\|^2 = s_{A,j}^2 + s_{B,i}^2$ (for $O(m)$: $u_i u_j^\top - u_j u_i^\top$, $i<j$, and
$s_i^2 + s_j^2$). So $P$ is applied in $O(m^2(n_A+n_B))$ per product from two SVDs done once, with
no cancellation: each coefficient is an inner product with an explicitly unit vector. Tangents with
$\|t_{ij}\| \le 10^{-10}\max\|t\|$ are dropped (the rank cutoff of a dense SVD basis, the
pseudo-inverse of $T^\top T$), so $P$ stays an orthogonal projector when $Z$ is rank-deficient.
"""

from __future__ import annotations

import numpy as np

#: Singular values of $T$ below this fraction of the largest are rounding, not tangents.
RANK_CUTOFF = 1e-10


def _svd_full(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(U, s, V)`: U m×m orthogonal, s padded with zeros to m, V n×m (zero columns past min(m, n))."""
    m, n = Z.shape
    U, s, Vt = np.linalg.svd(Z, full_matrices=True)
    k = s.size
    s_pad, V = np.zeros(m), np.zeros((n, m))
    s_pad[:k], V[:, :k] = s, Vt[:k].T
    return U, s_pad, V


def _inverse_norms(rho2: np.ndarray) -> np.ndarray:
    r"""$1/\|t\|^2$ for the kept tangents, 0 for those below the rank cutoff."""
    top = float(rho2.max(initial=0.0))
    keep = rho2 > RANK_CUTOFF**2 * top
    return np.where(keep, 1.0 / np.where(keep, rho2, 1.0), 0.0) if top > 0 else np.zeros_like(rho2)


class Projector:
    r"""$P$ of the module docstring at $(Z_A, Z_B)$; `group` is "GL", "O" or None, `ranges` the bases
    $(R_A, R_B)$ of range $\Sigma$ (None: all of $\mathbb R^n$, no row move is flat)."""

    def __init__(self, Z_A: np.ndarray, Z_B: np.ndarray, ranges, group: str | None):
        (self.m, self.nA), self.nB = Z_A.shape, Z_B.shape[1]
        self.ranges = ranges
        self.group = group
        Z_A, Z_B = self._rows(Z_A, Z_B)
        if group == "GL":
            self.U_A, s_A, self.V_A = _svd_full(Z_A)
            self.U_B, s_B, self.V_B = _svd_full(Z_B)
            self.s_A, self.s_B = s_A[None, :], s_B[:, None]  # entry (i, j): X = u_B,i u_A,jᵀ
            self.inv = _inverse_norms(self.s_B**2 + self.s_A**2)
        elif group == "O":
            self.U, s, self.V = _svd_full(np.hstack([Z_A, Z_B]))
            rho2 = s[:, None] ** 2 + s[None, :] ** 2
            np.fill_diagonal(rho2, 0.0)  # X skew: no (i, i) generator
            self.s, self.inv = s, _inverse_norms(rho2)
        elif group is not None:
            raise ValueError(f"group: expected 'GL', 'O' or None, got {group!r}")

    def _rows(self, V_A: np.ndarray, V_B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        R_A, R_B = self.ranges
        return (V_A if R_A is None else (V_A @ R_A) @ R_A.T), (V_B if R_B is None else (V_B @ R_B) @ R_B.T)

    def __call__(self, v: np.ndarray) -> np.ndarray:
        n = self.m * self.nA
        V_A, V_B = self._rows(v[:n].reshape(self.m, self.nA), v[n:].reshape(self.m, self.nB))
        if self.group == "GL":
            a = self.U_B.T @ V_A @ self.V_A  # ⟨u_B,i v_A,jᵀ, V_A⟩
            b = (self.U_A.T @ V_B @ self.V_B).T  # ⟨u_A,j v_B,iᵀ, V_B⟩ at (i, j)
            K = (self.s_A * a - self.s_B * b) * self.inv  # ⟨t_ij, V⟩ / ‖t_ij‖²
            V_A = V_A - self.U_B @ (K * self.s_A) @ self.V_A.T
            V_B = V_B + self.U_A @ (K * self.s_B).T @ self.V_B.T
        elif self.group == "O":
            V = np.hstack([V_A, V_B])
            a = self.U.T @ V @ self.V  # ⟨u_i v_jᵀ, V⟩
            s = self.s
            K = (s[None, :] * a - s[:, None] * a.T) * self.inv  # antisymmetric
            V = V - self.U @ (K * s[None, :]) @ self.V.T
            V_A, V_B = V[:, : self.nA], V[:, self.nA:]
        return np.concatenate([V_A.ravel(), V_B.ravel()])
