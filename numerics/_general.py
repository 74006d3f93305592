r"""General (non-decoupled) instances built from their canonical structure.

Given view covariances $S_A = R_A\,\mathrm{diag}(s_A)R_A^\top$, $S_B$ (any anisotropy) and
canonical correlations $1 > \rho_1 \ge \dots \ge \rho_r > 0$, put, with Haar $U$ ($d_A\times r$),
$V$ ($d_B\times r$) and a mixing rotation $R$ ($r\times r$),

$$A = S_A^{1/2} U \mathrm{diag}(\sqrt\rho) R,\quad B = S_B^{1/2} V \mathrm{diag}(\sqrt\rho) R,\quad
  A_\xi = S_A^{1/2}(I - U\mathrm{diag}(\rho)U^\top)^{1/2},\ B_\xi \text{ likewise}.$$

Then $\Sigma_A = AA^\top + A_\xi A_\xi^\top = S_A$, $C = AB^\top = S_A^{1/2}U\mathrm{diag}(\rho)V^\top S_B^{1/2}$,
so $K = \Sigma_A^{-1/2}C\Sigma_B^{-1/2} = U\mathrm{diag}(\rho)V^\top$: the canonical correlations are
exactly $\rho$ and the top canonical directions of view A are $\Sigma_A^{-1/2}U_{[:m]}$ —
by construction, with no filtering. $A$ and $B$ share no singular basis and the noise is
not isotropic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._instances import random_orthonormal
from ._problem import Problem
from ._validate import as_int, as_real


@dataclass(frozen=True, eq=False)
class CanonicalInstance:
    """A problem with known canonical correlations `rho` and directions (columns of `dirs_A`, `dirs_B`)."""

    problem: Problem
    rho: np.ndarray
    #: $\Sigma_A^{-1/2}U$ and $\Sigma_B^{-1/2}V$ (canonical weight vectors, in order).
    dirs_A: np.ndarray
    dirs_B: np.ndarray


def _sqrt_psd(S: np.ndarray, power: float) -> np.ndarray:
    w, Q = np.linalg.eigh((S + S.T) / 2)
    return (Q * np.clip(w, 0.0, None) ** power) @ Q.T


def canonical_instance(
    rho: Sequence[float],
    spectrum_SA: Sequence[float],
    spectrum_SB: Sequence[float],
    *,
    m: int,
    lam: float = 1.0,
    seed: int = 0,
) -> CanonicalInstance:
    """Build the instance above; $d_A$ = len(`spectrum_SA`) $\\ge r$ = len(`rho`), likewise $d_B$."""
    r_ = np.array([as_real(f"rho[{i}]", v, low=0.0, strict=True) for i, v in enumerate(rho)])
    if np.any(r_ >= 1.0):
        raise ValueError("rho: canonical correlations must be < 1 (noise must have full rank)")
    sA = np.array([as_real(f"spectrum_SA[{i}]", v, low=0.0, strict=True) for i, v in enumerate(spectrum_SA)])
    sB = np.array([as_real(f"spectrum_SB[{i}]", v, low=0.0, strict=True) for i, v in enumerate(spectrum_SB)])
    r, d_A, d_B = r_.size, sA.size, sB.size
    if d_A < r or d_B < r:
        raise ValueError(f"spectrum_SA, spectrum_SB: need at least r = {r} values, got {d_A}, {d_B}")
    m = as_int("m", m)
    rng = np.random.default_rng(as_int("seed", seed, low=0))
    R_A, R_B = random_orthonormal(rng, d_A, d_A), random_orthonormal(rng, d_B, d_B)
    U, V, R = random_orthonormal(rng, d_A, r), random_orthonormal(rng, d_B, r), random_orthonormal(rng, r, r)
    S_A, S_B = (R_A * sA) @ R_A.T, (R_B * sB) @ R_B.T
    hA, hB = _sqrt_psd(S_A, 0.5), _sqrt_psd(S_B, 0.5)
    A = hA @ U @ np.diag(np.sqrt(r_)) @ R
    B = hB @ V @ np.diag(np.sqrt(r_)) @ R
    A_xi = hA @ _sqrt_psd(np.eye(d_A) - (U * r_) @ U.T, 0.5)
    B_xi = hB @ _sqrt_psd(np.eye(d_B) - (V * r_) @ V.T, 0.5)
    p = Problem(A=A, B=B, A_xi=A_xi, B_xi=B_xi, m=m, lam=lam)
    return CanonicalInstance(p, r_, _sqrt_psd(S_A, -0.5) @ U, _sqrt_psd(S_B, -0.5) @ V)


def principal_angle_sin(X: np.ndarray, Y: np.ndarray) -> float:
    r"""$\sin$ of the largest principal angle between the column spans of X and Y (same dimension).

    Computed as $\|(I - Q_YQ_Y^\top)Q_X\|_2$, not $\sqrt{1-\cos^2}$, which loses half the digits
    for small angles ($\sqrt{\epsilon} \approx 1.5\cdot10^{-8}$ at best)."""
    qx, _ = np.linalg.qr(X)
    qy, _ = np.linalg.qr(Y)
    return float(np.linalg.norm(qx - qy @ (qy.T @ qx), 2))


def balanced_init(p: Problem, scale: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r"""Gaussian weights with $Q = W_AW_A^\top - W_BW_B^\top = 0$ exactly: $W_B = W_A R$ with $RR^\top = I$.

    (When $d_A > d_B$ the roles swap.) The flow conserves $Q$, so the run stays balanced."""
    scale = as_real("scale", scale, low=0.0, strict=True)
    rng = np.random.default_rng(as_int("seed", seed, low=0))
    small, big = sorted((p.d_A, p.d_B))
    W = scale * rng.standard_normal((p.m, small))
    R = random_orthonormal(rng, big, small).T
    return (W, W @ R) if p.d_A <= p.d_B else (W @ R, W)
