r"""The symmetric InfoNCE (CLIP) loss for linear encoders, with its gradient.

For a batch of $n$ positive pairs (rows of $X_A \in \mathbb{R}^{n\times d_A}$
and $X_B \in \mathbb{R}^{n\times d_B}$) and linear encoders
$W_A \in \mathbb{R}^{m\times d_A}$, $W_B \in \mathbb{R}^{m\times d_B}$:

$$
F_A = X_A W_A^\top, \quad F_B = X_B W_B^\top, \qquad
G = \begin{cases} F & \text{raw} \\
\operatorname{diag}(\rho)^{-1} F,\ \rho_i = \sqrt{\lVert F_{i\cdot}\rVert^2 + \epsilon^2}
& \text{normalised} \end{cases}
$$

$$
S = \tau\, G_A G_B^\top, \qquad
\mathcal{L} = \frac{1}{2n} \sum_{i=1}^n
\Big[\underbrace{\log\textstyle\sum_j e^{S_{ij}} - S_{ii}}_{\text{row } i}
   + \underbrace{\log\textstyle\sum_j e^{S_{ji}} - S_{ii}}_{\text{column } i}\Big].
$$

$\tau$ is an inverse temperature (CLIP's logit scale $e^{t}$). The off-diagonal
entries of $S$ are the in-batch negative pairs. The gradient is

$$
\bar S := \frac{\partial \mathcal{L}}{\partial S}
  = \frac{1}{2n}\big(P^{\text{row}} + P^{\text{col}} - 2I\big),
\qquad
\frac{\partial \mathcal{L}}{\partial \log\tau} = \langle \bar S, S \rangle,
$$

with $P^{\text{row}}$ ($P^{\text{col}}$) the row-wise (column-wise) softmax of
$S$, then back through the normalisation and the linear maps.
"""

from __future__ import annotations

import numpy as np

__all__ = ["clip_loss", "clip_loss_and_grad"]

# Enters the norm as sqrt(|f|^2 + eps^2): smooth everywhere (so the analytic
# gradient is the exact gradient of what is computed) yet a relative change of
# only eps^2/|f|^2 ~ 1e-16 for features of unit size.
_DEFAULT_EPS = 1e-8


def _check_inputs(
    W_A: np.ndarray,
    W_B: np.ndarray,
    X_A: np.ndarray,
    X_B: np.ndarray,
    tau: float,
    eps: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    r"""Coerce to float64 and check shapes; errors name the bad argument."""
    W_A, W_B, X_A, X_B = (np.asarray(M, dtype=float) for M in (W_A, W_B, X_A, X_B))
    for name, M in (("W_A", W_A), ("W_B", W_B), ("X_A", X_A), ("X_B", X_B)):
        if M.ndim != 2:
            raise ValueError(f"{name} must be a 2-D matrix, got shape {M.shape}")
    if W_A.shape[0] != W_B.shape[0]:
        raise ValueError(
            f"W_B must have {W_A.shape[0]} rows like W_A, got {W_B.shape[0]}"
        )
    if X_A.shape[1] != W_A.shape[1]:
        raise ValueError(f"X_A must have {W_A.shape[1]} columns, got {X_A.shape[1]}")
    if X_B.shape[1] != W_B.shape[1]:
        raise ValueError(f"X_B must have {W_B.shape[1]} columns, got {X_B.shape[1]}")
    if X_A.shape[0] != X_B.shape[0] or X_A.shape[0] < 1:
        raise ValueError(
            f"X_A and X_B must hold the same n >= 1 pairs, got {X_A.shape[0]} "
            f"and {X_B.shape[0]}"
        )
    tau = float(tau)
    if not (np.isfinite(tau) and tau > 0.0):
        raise ValueError(f"tau must be a finite positive number, got {tau}")
    if not (np.isfinite(eps) and eps > 0.0):
        # eps = 0 would turn an all-zero feature row into 0/0 = NaN.
        raise ValueError(f"eps must be a finite positive number, got {eps}")
    return W_A, W_B, X_A, X_B, tau


def _encode(
    W: np.ndarray, X: np.ndarray, normalize: bool, eps: float
) -> tuple[np.ndarray, np.ndarray | None]:
    r"""Features $G$ and, when normalised, the row norms $\rho$ (for backprop)."""
    F = X @ W.T
    if not normalize:
        return F, None
    rho = np.sqrt(np.sum(F * F, axis=1, keepdims=True) + eps * eps)
    return F / rho, rho


def _unnormalize_grad(
    dG: np.ndarray, G: np.ndarray, rho: np.ndarray | None
) -> np.ndarray:
    r"""Pull $\partial\mathcal{L}/\partial G$ back to $\partial\mathcal{L}/\partial F$.

    For $g = f/\rho$, $\rho = \sqrt{\lVert f\rVert^2+\epsilon^2}$:
    $\partial g/\partial f = (I - g g^\top)/\rho$ exactly ($\epsilon$ enters
    only through $\rho$), so $\bar f = (\bar g - g\,\langle g, \bar g\rangle)/\rho$.
    """
    if rho is None:
        return dG
    return (dG - G * np.sum(G * dG, axis=1, keepdims=True)) / rho


def _cross_entropy(S: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Per-example cross-entropy with the diagonal as labels, and the softmax, along `axis`.

    One exponential serves both. The label term is folded in as
    $\log\sum e^{S-\max} + (\max - S_{ii})$: when the label is the largest logit the
    bracket is exactly $0$, so a near-zero loss at huge $	au$ is not the difference
    of two numbers of size $	au$ (which would cancel catastrophically).
    """
    top = S.max(axis=axis, keepdims=True)
    E = np.exp(S - top)
    Z = E.sum(axis=axis, keepdims=True)
    terms = np.log(np.squeeze(Z, axis=axis)) + (np.squeeze(top, axis=axis) - np.diag(S))
    return terms, E / Z


def _loss_from_logits(S: np.ndarray) -> float:
    """Symmetric cross-entropy (CLIP's loss) of a square logit matrix."""
    return 0.5 * (float(np.mean(_cross_entropy(S, 1)[0])) + float(np.mean(_cross_entropy(S, 0)[0])))


def _logits(
    W_A: np.ndarray,
    W_B: np.ndarray,
    X_A: np.ndarray,
    X_B: np.ndarray,
    tau: float,
    normalize: bool,
    eps: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    r"""Logits $S = \tau G_A G_B^\top$ plus what the backward pass needs."""
    G_A, rho_A = _encode(W_A, X_A, normalize, eps)
    G_B, rho_B = _encode(W_B, X_B, normalize, eps)
    # Overflow is detected just below; silence NumPy's warning so a strict
    # warnings filter cannot pre-empt the clearer error.
    with np.errstate(over="ignore", invalid="ignore"):
        S = tau * (G_A @ G_B.T)
    if not np.all(np.isfinite(S)):
        # Only reachable when tau * |f_A| |f_B| exceeds ~1e308; a NaN loss
        # would silently poison a training run, so fail loudly instead.
        raise FloatingPointError("CLIP logits overflowed; reduce tau or the weights")
    return S, G_A, G_B, rho_A, rho_B


def clip_loss(
    W_A: np.ndarray,
    W_B: np.ndarray,
    X_A: np.ndarray,
    X_B: np.ndarray,
    tau: float,
    normalize: bool = False,
    *,
    eps: float = _DEFAULT_EPS,
) -> float:
    r"""Symmetric InfoNCE loss $\mathcal{L}$ (see the module docstring).

    **Parameters** as in `clip_loss_and_grad`. **Returns** $\mathcal{L} \ge 0$.
    """
    W_A, W_B, X_A, X_B, tau = _check_inputs(W_A, W_B, X_A, X_B, tau, eps)
    S = _logits(W_A, W_B, X_A, X_B, tau, normalize, eps)[0]
    return _loss_from_logits(S)


def clip_loss_and_grad(
    W_A: np.ndarray,
    W_B: np.ndarray,
    X_A: np.ndarray,
    X_B: np.ndarray,
    tau: float,
    normalize: bool = False,
    learn_tau: bool = False,
    *,
    eps: float = _DEFAULT_EPS,
) -> tuple[float, np.ndarray, np.ndarray, float | None]:
    r"""Symmetric InfoNCE loss and its analytic gradient.

    **Parameters**

    - `W_A`: $m \times d_A$, `W_B`: $m \times d_B$ encoder weights.
    - `X_A`: $n \times d_A$, `X_B`: $n \times d_B$; row $i$ of each is pair $i$.
    - `tau`: inverse temperature $\tau > 0$ (logits are $\tau\langle g_A, g_B\rangle$).
    - `normalize`: L2-normalise feature rows (with the $\epsilon$ guard).
    - `learn_tau`: also return $\partial\mathcal{L}/\partial\log\tau$, the
      gradient CLIP uses since it learns $t$ with $\tau = e^t$.
    - `eps`: the normalisation guard $\epsilon$.

    **Returns** `(loss, dW_A, dW_B, dlog_tau)` with
    $\partial\mathcal{L}/\partial W_A = \bar F_A^\top X_A$,
    $\partial\mathcal{L}/\partial W_B = \bar F_B^\top X_B$, where
    $\bar G_A = \tau\, \bar S\, G_B$, $\bar G_B = \tau\, \bar S^\top G_A$,
    $\bar S = \partial\mathcal{L}/\partial S$; `dlog_tau` is `None` unless
    `learn_tau`.

    The softmaxes are shift-stabilised, so everything stays finite for logits
    of any representable size (e.g. $\tau = 10^4$ with normalised features).
    """
    W_A, W_B, X_A, X_B, tau = _check_inputs(W_A, W_B, X_A, X_B, tau, eps)
    S, G_A, G_B, rho_A, rho_B = _logits(W_A, W_B, X_A, X_B, tau, normalize, eps)
    n = S.shape[0]
    rows, P_rows = _cross_entropy(S, 1)
    cols, P_cols = _cross_entropy(S, 0)
    loss = 0.5 * (float(np.mean(rows)) + float(np.mean(cols)))

    # Softmax minus one-hot, once for the A->B (row) and once for the B->A
    # (column) classification; 1/(2n) from the two means and the 1/2.
    dS = P_rows + P_cols
    dS[np.diag_indices(n)] -= 2.0
    dS *= 0.5 / n

    dF_A = _unnormalize_grad(tau * (dS @ G_B), G_A, rho_A)
    dF_B = _unnormalize_grad(tau * (dS.T @ G_A), G_B, rho_B)
    dW_A = dF_A.T @ X_A
    dW_B = dF_B.T @ X_B

    dlog_tau: float | None = None
    if learn_tau:
        # S is linear in tau, so dL/dlog(tau) = tau * <dS, S/tau> = <dS, S>.
        dlog_tau = float(np.sum(dS * S))
    return loss, dW_A, dW_B, dlog_tau
