r"""$\frac{d}{dt}\log\kappa$ from the state, split by loss term (THEORY §7, C7).

With $M = W_A C W_B^\top = \sum_i \sigma_i u_i v_i^\top$ and simple $\sigma_1, \sigma_k$,
$\dot\sigma_i = u_i^\top \dot M v_i$, and $\dot M$ is linear in $(\dot W_A, \dot W_B)$, which
is a sum over terms. So

$$\frac{d\log\kappa}{dt} = \sum_{\text{terms } j}\left(\frac{u_1^\top \dot M^{(j)} v_1}{\sigma_1}
  - \frac{u_k^\top \dot M^{(j)} v_k}{\sigma_k}\right),\qquad
  \dot M^{(j)} = \dot W_A^{(j)} C W_B^\top + W_A C \dot W_B^{(j)\top}.$$
"""

from __future__ import annotations

import numpy as np

from ._metrics import _thin, cheapest_flow
from ._problem import Problem


def _M_and_dM(p: Problem, W_A: np.ndarray, W_B: np.ndarray, dA: np.ndarray,
              dB: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""$M = W_A C W_B^\top$ and $\dot M = \dot W_A C W_B^\top + W_A C \dot W_B^\top$; through the factors,
    $F_A = W_A A$, $\dot F_A = \dot W_A A$, $\dot M = \dot F_A\Sigma_z F_B^\top + F_A\Sigma_z\dot F_B^\top$
    ($O(mdr)$), when `feature_covariance` reads $C$ that way."""
    if _thin(p):
        Sz = p.Sigma_z
        F_A, F_B = W_A @ p.A, W_B @ p.B
        return F_A @ Sz @ F_B.T, (dA @ p.A) @ Sz @ F_B.T + F_A @ Sz @ (dB @ p.B).T
    C = p.C
    return W_A @ C @ W_B.T, dA @ C @ W_B.T + W_A @ C @ dB.T


def _rate(p: Problem, M: np.ndarray, dMs: list[np.ndarray]) -> list[float]:
    k = min(p.m, p.rank_C)
    U, s, Vt = np.linalg.svd(M)
    u1, v1, uk, vk = U[:, 0], Vt[0], U[:, k - 1], Vt[k - 1]
    return [float(u1 @ dM @ v1 / s[0] - uk @ dM @ vk / s[k - 1]) for dM in dMs]


def dlog_kappa(p: Problem, W_A: np.ndarray, W_B: np.ndarray,
               terms: tuple[str, ...] = ("pos", "neg")) -> dict[str, float]:
    """Each term's contribution to $d\\log\\kappa/dt$ at $(W_A, W_B)$ (they add up to the total)."""
    parts = [_M_and_dM(p, W_A, W_B, *cheapest_flow(p, (name,))(W_A, W_B)) for name in terms]
    if not parts:
        return {}
    return dict(zip(terms, _rate(p, parts[0][0], [dM for _, dM in parts])))


def dlog_kappa_total(p: Problem, W_A: np.ndarray, W_B: np.ndarray, terms: tuple[str, ...] = ("pos", "neg")) -> float:
    """$d\\log\\kappa/dt$ along the flow of `terms` (one compiled RHS, not a sum of per-term calls; the
    structured form when it is cheaper, so at large $d$ no $d\\times d$ moment is formed)."""
    M, dM = _M_and_dM(p, W_A, W_B, *cheapest_flow(p, tuple(terms))(W_A, W_B))
    return _rate(p, M, [dM])[0]
