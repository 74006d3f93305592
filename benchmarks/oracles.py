"""Hand-written NumPy right-hand sides: the baselines of the benchmark (never used by the package).

Typed from THEORY §3 the way a careful person would: share W Σ, multiply the m×m factor
first, scale the small matrix.
"""

from __future__ import annotations

import numpy as np


def hand_full_field(Sigma_A: np.ndarray, Sigma_B: np.ndarray, C: np.ndarray, lam: float, m: int):
    """`f(t, y)` on the flat state (vec W_A, vec W_B) for L = L_pos + λ L_neg."""
    d_A, d_B = Sigma_A.shape[0], Sigma_B.shape[0]
    n = m * d_A
    CT = C.T

    def f(_t: float, y: np.ndarray) -> np.ndarray:
        W_A, W_B = y[:n].reshape(m, d_A), y[n:].reshape(m, d_B)
        WS_A, WS_B = W_A @ Sigma_A, W_B @ Sigma_B
        out = np.empty(y.shape)
        out[:n] = (W_B @ CT - lam * (WS_B @ W_B.T) @ WS_A).ravel()
        out[n:] = (W_A @ C - lam * (WS_A @ W_A.T) @ WS_B).ravel()
        return out

    return f


def hand_structured_field(A: np.ndarray, B: np.ndarray, Sz: np.ndarray, s_A: float, s_B: float, lam: float, m: int):
    """The same flow with Σ_A = A Σ_z Aᵀ + σ_A² I, C = A Σ_z Bᵀ, never forming a d×d matrix."""
    d_A, d_B = A.shape[0], B.shape[0]
    n = m * d_A
    AT, BT = A.T, B.T

    def f(_t: float, y: np.ndarray) -> np.ndarray:
        W_A, W_B = y[:n].reshape(m, d_A), y[n:].reshape(m, d_B)
        WA_A, WB_B = W_A @ A, W_B @ B
        P_A, P_B = WA_A @ Sz, WB_B @ Sz
        H_A = P_A @ WA_A.T + s_A**2 * (W_A @ W_A.T)
        H_B = P_B @ WB_B.T + s_B**2 * (W_B @ W_B.T)
        out = np.empty(y.shape)
        out[:n] = ((P_B - lam * H_B @ P_A) @ AT - (lam * s_A**2) * H_B @ W_A).ravel()
        out[n:] = ((P_A - lam * H_A @ P_B) @ BT - (lam * s_B**2) * H_A @ W_B).ravel()
        return out

    return f
