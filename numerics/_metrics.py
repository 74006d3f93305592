r"""What THEORY §4 measures: $\kappa$, per-view $\kappa$, $Q$, the loss, canonical correlations."""

from __future__ import annotations

import numpy as np

from ._autochoice import estimated_cost
from ._flowfn import flow_function
from ._problem import Problem, rank_of
from ._reduced import _range_basis
from ._structured import noise_kinds
from ._trajectory import Trajectory


#: $C$ with more entries than this (512 KB) is read through its factors.
THIN_ENTRIES = 2**16


def _thin(p: Problem) -> bool:
    """Whether $W_A C W_B^\\top$ is cheaper through the factors, $(W_A A)\\Sigma_z(W_B B)^\\top$
    ($O(m d r)$, no $d_A\\times d_B$ matrix), than through $C$ and $C$ is large (above
    `THIN_ENTRIES` entries, so the small instances of the claims engine keep their exact
    rounding): decided by the shapes only, so the same problem always gets the same numbers."""
    return p.d_A * p.d_B > max(THIN_ENTRIES, p.r * (p.d_A + p.d_B + p.r))


def feature_covariance(p: Problem, W_A: np.ndarray, W_B: np.ndarray) -> np.ndarray:
    """$M = \\mathbb E f_A f_B^\\top = W_A C W_B^\\top$ (m×m), with $C = A\\Sigma_z B^\\top$
    read through the factors when $d \\gg r$."""
    if _thin(p):
        return (W_A @ p.A) @ p.Sigma_z @ (W_B @ p.B).T
    return W_A @ p.C @ W_B.T


def _cond(s: np.ndarray, k: int) -> float:
    return float(s[0] / s[k - 1]) if s[k - 1] > 0 else float("inf")


def kappa(p: Problem, W_A: np.ndarray, W_B: np.ndarray) -> float:
    """$\\kappa = \\sigma_1(M)/\\sigma_k(M)$ with $k = \\min(m, \\operatorname{rank} C)$."""
    k = min(p.m, p.rank_C)
    return _cond(np.linalg.svd(feature_covariance(p, W_A, W_B), compute_uv=False), k)


def kappa_eig(p: Problem, W_A: np.ndarray, W_B: np.ndarray) -> float:
    r"""$|\lambda_1(M)|/|\lambda_k(M)|$: the eigenvalue ratio that THEORY §6 pins to $(\rho_1/\rho_k)^2$.

    At the CCA minimum the eigenvalues of $\lambda M$ are exactly $\rho_i^2$, but $M$ need not
    be normal, so its singular values (which define `kappa`) can differ from them.
    """
    k = min(p.m, p.rank_C)
    ev = np.sort(np.abs(np.linalg.eigvals(feature_covariance(p, W_A, W_B))))[::-1]
    return _cond(ev, k)


def view_kappas(p: Problem, W_A: np.ndarray, W_B: np.ndarray) -> tuple[float, float]:
    """$(\\kappa(W_A A), \\kappa(W_B B))$ over their top $\\min(m, r)$ singular values."""
    k = min(p.m, p.r)
    return (_cond(np.linalg.svd(W_A @ p.A, compute_uv=False), k),
            _cond(np.linalg.svd(W_B @ p.B, compute_uv=False), k))


def conserved_Q(W_A: np.ndarray, W_B: np.ndarray) -> np.ndarray:
    """$Q = W_A W_A^\\top - W_B W_B^\\top$."""
    return W_A @ W_A.T - W_B @ W_B.T


def _inv_sqrt(S: np.ndarray, rtol: float = 1e-12) -> np.ndarray:
    """Pseudo-inverse square root on the range of a PSD matrix."""
    w, V = np.linalg.eigh(S)
    keep = w > rtol * max(w.max(), 1e-300)
    return (V[:, keep] / np.sqrt(w[keep])) @ V[:, keep].T


def whitened_cross(p: Problem) -> np.ndarray:
    """$K = \\Sigma_A^{-1/2} C \\Sigma_B^{-1/2}$ (pseudo-inverse roots when noise is zero), $d_A\\times d_B$."""
    return _inv_sqrt(p.Sigma_A) @ p.C @ _inv_sqrt(p.Sigma_B)


def isotropic_core(p: Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    r"""$(\bar S_A, \bar S_B, \tilde C)$ of THEORY §8 when both views' noise is isotropic or zero, else None.

    With $U_A$ an orthonormal basis of $\operatorname{range} A$ ($d_A\times r_A$) and $T_A = U_A^\top A$,

    $$\Sigma_A = U_A\bar S_A U_A^\top + \sigma_A^2(I - U_AU_A^\top),\quad \bar S_A = T_A\Sigma_zT_A^\top + \sigma_A^2 I,
      \qquad C = U_A\tilde C U_B^\top,\quad \tilde C = T_A\Sigma_z T_B^\top,$$

    so $\Sigma_A^{-1/2} = U_A\bar S_A^{-1/2}U_A^\top + \sigma_A^{-1}(I - U_AU_A^\top)$ (pseudo-inverse roots alike:
    the largest eigenvalue of $\Sigma_A$ is that of $\bar S_A \succeq \sigma_A^2 I$, so the same eigenvalues are
    cut), and $K = U_A\tilde K U_B^\top$ with $\tilde K = \bar S_A^{-1/2}\tilde C\bar S_B^{-1/2}$
    ($r_A\times r_B$): the canonical correlations in $O(d r^2)$, no $d\times d$ matrix."""
    kinds, (sa, sb) = noise_kinds(p)
    if any(k not in ("none", "isotropic") for k in kinds):
        return None
    U_A, U_B = _range_basis(p.A), _range_basis(p.B)
    if not (U_A.shape[1] and U_B.shape[1]):
        return None
    T_A, T_B, Sz = U_A.T @ p.A, U_B.T @ p.B, p.Sigma_z
    S_A, S_B = T_A @ Sz @ T_A.T, T_B @ Sz @ T_B.T
    return ((S_A + S_A.T) / 2 + sa**2 * np.eye(S_A.shape[0]), (S_B + S_B.T) / 2 + sb**2 * np.eye(S_B.shape[0]),
            T_A @ Sz @ T_B.T)


def canonical_correlations(p: Problem) -> np.ndarray:
    """$\\rho_1 \\ge \\rho_2 \\ge \\dots$: singular values of the whitened cross-covariance (from the
    $r\\times r$ problem of `isotropic_core` when the noise is isotropic or zero)."""
    core = isotropic_core(p)
    if core is None:
        return np.linalg.svd(whitened_cross(p), compute_uv=False)[: p.rank_C]
    S_A, S_B, Ct = core
    return np.linalg.svd(_inv_sqrt(S_A) @ Ct @ _inv_sqrt(S_B), compute_uv=False)[: p.rank_C]


def kappa_limit(p: Problem) -> float:
    """The CCA prediction of THEORY §6: $\\kappa_\\infty = (\\rho_1/\\rho_k)^2$."""
    rho = canonical_correlations(p)
    k = min(p.m, rho.size)
    return float((rho[0] / rho[k - 1]) ** 2)


def cheapest_flow(p: Problem, terms: tuple[str, ...]):
    """The full or structured compiled flow, whichever costs less per call (same values up to
    rounding; below `THIN_ENTRIES` the full one, as before)."""
    if p.d_A * p.d_B <= THIN_ENTRIES:
        return flow_function(p, terms, "full")
    full, fast = flow_function(p, terms, "full"), flow_function(p, terms, "structured")
    cost = [estimated_cost(f.rhs_code.flops, f.rhs_code.n_ops) for f in (full, fast)]
    return fast if cost[1] < cost[0] else full


def series(p: Problem, traj: Trajectory) -> dict[str, np.ndarray]:
    """κ(t), eigenvalue κ(t), per-view κ(t), loss(t), ‖Q(t) − Q(0)‖_F and ‖∇L‖ along a trajectory.

    Frame by frame (a lazy trajectory rebuilds one $W$ at a time), through the cheaper of
    the full and structured forms: at large $d$ no $d\\times d$ moment is formed."""
    fn = cheapest_flow(p, traj.terms)
    Q0 = conserved_Q(traj.W_A[0], traj.W_B[0])
    out = {"t": traj.t, "kappa": [], "kappa_eig": [], "kappa_A": [], "kappa_B": [], "loss": [], "Q_drift": [], "grad_norm": []}
    for WA, WB in zip(traj.W_A, traj.W_B):
        out["kappa"].append(kappa(p, WA, WB))
        out["kappa_eig"].append(kappa_eig(p, WA, WB))
        ka, kb = view_kappas(p, WA, WB)
        out["kappa_A"].append(ka)
        out["kappa_B"].append(kb)
        out["loss"].append(fn.loss(WA, WB))
        out["Q_drift"].append(float(np.linalg.norm(conserved_Q(WA, WB) - Q0)))
        out["grad_norm"].append(fn.grad_norm(WA, WB))
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}
