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

from ._flowfn import flow_function
from ._problem import Problem


def dlog_kappa(p: Problem, W_A: np.ndarray, W_B: np.ndarray,
               terms: tuple[str, ...] = ("pos", "neg")) -> dict[str, float]:
    """Each term's contribution to $d\\log\\kappa/dt$ at $(W_A, W_B)$ (they add up to the total)."""
    k = min(p.m, p.rank_C)
    C = p.C
    U, s, Vt = np.linalg.svd(W_A @ C @ W_B.T)
    u1, v1, uk, vk = U[:, 0], Vt[0], U[:, k - 1], Vt[k - 1]
    out = {}
    for name in terms:
        dA, dB = flow_function(p, (name,))(W_A, W_B)
        dM = dA @ C @ W_B.T + W_A @ C @ dB.T
        out[name] = float(u1 @ dM @ v1 / s[0] - uk @ dM @ vk / s[k - 1])
    return out


def dlog_kappa_total(p: Problem, W_A: np.ndarray, W_B: np.ndarray, terms: tuple[str, ...] = ("pos", "neg")) -> float:
    """$d\\log\\kappa/dt$ along the flow of `terms` (one compiled RHS, not a sum of per-term calls)."""
    k = min(p.m, p.rank_C)
    C = p.C
    U, s, Vt = np.linalg.svd(W_A @ C @ W_B.T)
    dA, dB = flow_function(p, terms)(W_A, W_B)
    dM = dA @ C @ W_B.T + W_A @ C @ dB.T
    return float(U[:, 0] @ dM @ Vt[0] / s[0] - U[:, k - 1] @ dM @ Vt[k - 1] / s[k - 1])
