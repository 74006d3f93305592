r"""How far a converged run still is from the equilibrium set: an a-posteriori bound.

Near a minimum the flow is $f(y) = -\nabla L(y) \approx J\,(y - y^*)$ with $J = -\nabla^2 L$
symmetric. The minimisers form a manifold (the $GL(m)$ orbit $W_A \to GW_A$,
$W_B \to G^{-\top}W_B$, plus any directions the data cannot see), along which $J$ vanishes;
for the nearest $y^*$, $y - y^*$ is normal to it, so to first order

$$\|y - y^*\| \le \|f(y)\| / \gamma,\qquad \gamma = \text{smallest non-zero } |\mathrm{eig}(J)|.$$

The claims turn this distance into tolerances on $\kappa$ and on $\mathrm{eig}(\lambda M)$,
instead of a constant that merely happens to pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._flowfn import flow_function
from ._metrics import rank_of
from ._problem import Problem


@dataclass(frozen=True)
class EquilibriumDistance:
    """First-order distance to the equilibrium set, and the Newton estimate of the nearest equilibrium.

    `gap` = γ / (largest |eig| counted as null) checks that the null space was split off cleanly."""

    distance: float
    grad_norm: float
    gamma: float
    null_dim: int
    gap: float
    #: $(W_A, W_B) - J^{+}f$: the nearest equilibrium, to second order in the distance.
    W_A_star: np.ndarray
    W_B_star: np.ndarray
    #: All non-null eigenvalues of $J = -\nabla^2 L$ are negative: a minimum, not a saddle.
    stable: bool


def null_dimension(p: Problem) -> int:
    r"""$m^2$ (the $GL(m)$ orbit) plus $m$ per direction of $\mathbb R^{d}$ that $\Sigma$ does not see."""
    extra = (p.d_A - rank_of(p.Sigma_A)) + (p.d_B - rank_of(p.Sigma_B))
    return p.m * p.m + p.m * extra


def jacobian(p: Problem, W_A: np.ndarray, W_B: np.ndarray, terms: tuple[str, ...]) -> np.ndarray:
    """Central-difference Jacobian of the flat vector field (symmetrised: it is $-\\nabla^2 L$)."""
    f = flow_function(p, terms).vector_field()
    y = np.concatenate([W_A.ravel(), W_B.ravel()])
    # h balances truncation, O(h^2 f'''), against round-off, O(eps f / h), at the state's scale.
    h = np.cbrt(np.finfo(float).eps) * max(1.0, float(np.abs(y).max()))
    J = np.empty((y.size, y.size))
    for i in range(y.size):
        e = np.zeros_like(y)
        e[i] = h
        J[:, i] = (f(0.0, y + e) - f(0.0, y - e)) / (2 * h)
    return (J + J.T) / 2


def equilibrium_distance(p: Problem, W_A: np.ndarray, W_B: np.ndarray,
                         terms: tuple[str, ...] = ("pos", "neg")) -> EquilibriumDistance:
    r"""Newton step $\delta = J^{+} f$ on the non-null eigenspace of $J$: $y - y^* = \delta + O(\|\delta\|^2)$."""
    dA, dB = flow_function(p, terms)(W_A, W_B)
    f = np.concatenate([np.ravel(dA), np.ravel(dB)])
    w, V = np.linalg.eigh(jacobian(p, W_A, W_B, terms))
    order = np.argsort(np.abs(w))
    k = min(null_dimension(p), w.size - 1)
    keep, null = order[k:], order[:k]
    gamma = float(np.abs(w[keep]).min())
    null_max = float(np.abs(w[null]).max()) if k > 0 else 0.0
    delta = V[:, keep] @ ((V[:, keep].T @ f) / w[keep])
    n = W_A.size
    return EquilibriumDistance(float(np.linalg.norm(delta)), float(np.linalg.norm(f)), gamma, k,
                               gamma / null_max if null_max > 0 else float("inf"),
                               W_A - delta[:n].reshape(W_A.shape), W_B - delta[n:].reshape(W_B.shape),
                               bool(w[keep].max() < 0))


def integrate_to_equilibrium(
    p: Problem, W_A0: np.ndarray, W_B0: np.ndarray, terms: tuple[str, ...] = ("pos", "neg"), *,
    t_chunk: float, target: float, max_chunks: int = 10, **kw: object,
) -> tuple[np.ndarray, np.ndarray, EquilibriumDistance, float, int]:
    r"""Integrate in doubling chunks until the distance is below `target`$\cdot\|W\|$, or below
    $\sqrt{\text{target}}\cdot\|W\|$ and no longer shrinking (the solver's accuracy).

    A relative-gradient stopping rule scales with $\|C\|$ and stops far too early on
    anisotropic data; the distance does not. It stops shrinking once it reaches the
    solver's accuracy. Returns $(W_A, W_B)$, the distance, the time reached and the RHS
    evaluations used (`kw` goes to `integrate`)."""
    from ._integrate import integrate

    W_A, W_B, t, nfev, chunk = W_A0, W_B0, 0.0, 0, float(t_chunk)
    last = np.inf
    ed = equilibrium_distance(p, W_A, W_B, terms)
    for _ in range(max_chunks):
        tr = integrate(p, W_A, W_B, chunk, terms, n_points=2, **kw)
        W_A, W_B, t, nfev = tr.W_A[-1], tr.W_B[-1], t + float(tr.t_stop), nfev + tr.nfev
        ed = equilibrium_distance(p, W_A, W_B, terms)
        if tr.status in ("diverged", "failed"):
            break
        # Near a saddle the Newton step means nothing: keep integrating until the state is stable.
        # Stagnation (the distance no longer halving per doubled chunk) only ends the run once the
        # state is close (solver-accuracy territory), not while it is still travelling.
        scale = float(np.sqrt(np.sum(W_A**2) + np.sum(W_B**2)))
        close = ed.distance <= np.sqrt(target) * scale
        if ed.stable and (ed.distance <= target * scale or (close and ed.distance > 0.5 * last)):
            break
        last = ed.distance if ed.stable else np.inf
        chunk *= 2.0
    return W_A, W_B, ed, t, nfev
