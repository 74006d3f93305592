r"""The certificate behind status `converged`: near a stable equilibrium, not merely a small gradient.

See `_certify` for when it is asked; this module is the test itself, on the full state $(W_A, W_B)$:
the Jacobian $J = -\nabla^2 L$ dense for small states, matrix-free (`_certify_mf`) beyond `MAX_CERTIFY`
entries, with the loss's symmetry directions (flat by invariance) set apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.linalg import expm

#: Largest $m(d_A+d_B)$ whose Jacobian is eigen-decomposed for the certificate (about 1 s here);
#: larger states are certified matrix-free (`_certify_mf`) up to `MAX_MATRIX_FREE` entries.
MAX_CERTIFY = 1000
MAX_MATRIX_FREE = 1_000_000


@dataclass(frozen=True)
class Certificate:
    ok: bool
    stable: bool
    top: float  # largest eigenvalue of J = -∇²L
    gamma: float  # smallest |eigenvalue| of a curved (non-flat) direction
    distance: float  # Newton step ‖J⁺f‖ on the curved directions
    reason: str
    #: False: the test cannot tell (flat directions not shown to be symmetries, a state too large):
    #: the run ends `uncertified`, never `converged`.
    decided: bool = True


def symmetry_tangents(W_A: np.ndarray, W_B: np.ndarray, terms: tuple[str, ...],
                      nulls: tuple[np.ndarray, np.ndarray], loss: Callable | None = None) -> np.ndarray | None:
    r"""Directions along which the loss is exactly flat (columns; None: not known for these terms).

    `pos`, `neg` depend on $W$ only through $W_A^\top W_B$, $W_A\Sigma_A$, $W_B\Sigma_B$: the
    $GL(m)$ orbit $(\xi W_A, -\xi^\top W_B)$ and moves of a row along $\ker\Sigma_A$ or $\ker\Sigma_B$.
    With weight decay only the $O(m)$ orbit $(\xi W_A, \xi W_B)$, $\xi^\top = -\xi$, is left. For other
    terms, given `loss(W_A, W_B)`, the same candidates are *verified* on the loss (`symmetries`):
    a group is kept only if the loss, evaluated along its orbits, is constant."""
    if set(terms) <= {"pos", "neg"}:
        group, ker = "GL", True
    elif set(terms) <= {"pos", "neg", "wd"}:
        group, ker = "O", False
    elif loss is None:
        return None
    else:
        group, ker = symmetries(loss, W_A, W_B, nulls)
    return tangents(W_A, W_B, group, nulls if ker else (nulls[0][:, :0], nulls[1][:, :0]))


def tangents(W_A: np.ndarray, W_B: np.ndarray, group: str | None, nulls: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Columns: the tangents of the `group` orbit ("GL", "O" or None) and row moves along the `nulls`."""
    m, dA, dB = W_A.shape[0], W_A.shape[1], W_B.shape[1]
    vecs = []
    E = np.eye(m)
    if group == "GL":
        for i in range(m):
            for j in range(m):
                xi = np.outer(E[i], E[j])
                vecs.append(np.concatenate([(xi @ W_A).ravel(), (-xi.T @ W_B).ravel()]))
    elif group == "O":
        for i in range(m):
            for j in range(i + 1, m):
                xi = np.outer(E[i], E[j]) - np.outer(E[j], E[i])
                vecs.append(np.concatenate([(xi @ W_A).ravel(), (xi @ W_B).ravel()]))
    for k, (null, d) in enumerate(zip(nulls, (dA, dB))):
        for nv in null.T:
            for i in range(m):
                V = [np.zeros((m, dA)), np.zeros((m, dB))]
                V[k][i] = nv
                vecs.append(np.concatenate([V[0].ravel(), V[1].ravel()]))
    return np.array(vecs).T if vecs else np.zeros((m * (dA + dB), 0))


class Certifier:
    """The test of the module docstring, on the full state $(W_A, W_B)$ whatever form was integrated."""

    def __init__(self, problem, names: tuple[str, ...], eq_tol: float, make_full_jac: Callable):
        from ._flowfn import flow_function
        from ._metrics import rank_of

        self.fn, self.names, self.eq_tol, self._make = flow_function(problem, names), names, eq_tol, make_full_jac
        self.size = problem.m * (problem.d_A + problem.d_B)
        self._p, self._jac, self._nulls, self._rank_of = problem, None, None, rank_of

    def _null(self, S: np.ndarray) -> np.ndarray:
        w, V = np.linalg.eigh(S)
        return V[:, : S.shape[0] - self._rank_of(S)]

    def __call__(self, t: float, W_A: np.ndarray, W_B: np.ndarray) -> Certificate:
        if self.size > MAX_CERTIFY:
            from ._certify_mf import matrix_free_certificate

            return matrix_free_certificate(self, t, W_A, W_B)
        if self._jac is None:
            self._jac = self._make() or False
            self._nulls = (self._null(self._p.Sigma_A), self._null(self._p.Sigma_B))
        dA, dB = self.fn(W_A, W_B)
        f = np.concatenate([np.ravel(dA), np.ravel(dB)])
        y = np.concatenate([W_A.ravel(), W_B.ravel()])
        if self._jac:
            J, rel = np.asarray(self._jac(t, y), dtype=float), 1e3 * y.size * np.finfo(float).eps
        else:  # no derived Jacobian (e.g. a user term that is not polynomial): central differences
            field, h = self.fn.vector_field(), np.cbrt(np.finfo(float).eps) * max(1.0, float(np.abs(y).max()))
            J = np.column_stack([(field(t, y + h * e) - field(t, y - h * e)) / (2 * h) for e in np.eye(y.size)])
            rel = np.sqrt(np.finfo(float).eps)
        J = (J + J.T) / 2  # -∇²L: symmetric up to rounding
        w, V = np.linalg.eigh(J)
        tau = rel * float(np.abs(w).max(initial=0.0))
        T = symmetry_tangents(W_A, W_B, self.names, self._nulls, self.fn.loss)
        builtin = set(self.names) <= {"pos", "neg", "wd"}
        outside = np.ones(w.size)
        if T is not None and T.shape[1]:
            # J vanishes on the flat directions only at a critical point (J(ξ·y) = ξ·f(y)), and
            # near a rank-deficient W that leakage is not small: an eigenvector counts as flat when
            # it lies mostly in their span, whatever its eigenvalue.
            U, sv, _ = np.linalg.svd(T, full_matrices=False)
            Q = U[:, sv > 1e-10 * sv.max(initial=0.0)]
            outside = np.linalg.norm(V - Q @ (Q.T @ V), axis=0)
        curved = (np.abs(w) > tau) & (outside > 0.5)
        flat_V = V[:, (np.abs(w) <= tau) & (outside > 0.5)]
        w, V = w[curved], V[:, curved]
        top = float(w.max(initial=-np.inf))
        if top > tau:
            return unstable(t, top, tau)
        gamma = float(np.abs(w).min(initial=np.inf))
        if not builtin and flat_V.shape[1]:  # user terms: flat beyond the verified symmetries
            return Certificate(False, True, top, gamma, np.nan, f"uncertified at t={t:.4g}: {unverified(flat_V)}",
                               decided=False)
        delta = V @ ((V.T @ f) / w)
        dist, scale = float(np.linalg.norm(delta)), float(np.linalg.norm(y))
        if dist > self.eq_tol * scale:
            return Certificate(False, True, top, gamma, dist,
                               f"stable but not yet close at t={t:.4g}: Newton distance {dist:.3g} > "
                               f"eq_tol·‖W‖ = {self.eq_tol * scale:.3g} (γ = {gamma:.3g})")
        return Certificate(True, True, top, gamma, dist,
                           f"converged at t={t:.4g}, certified: no unstable direction (top eigenvalue {top:.2g}), "
                           f"Newton distance {dist:.3g} <= eq_tol·‖W‖ = {self.eq_tol * scale:.3g}")


def unstable(t: float, top: float, tau: float) -> Certificate:
    return Certificate(False, False, top, np.nan, np.inf,
                       f"saddle/plateau at t={t:.4g}: the Hessian has an unstable direction (eigenvalue "
                       f"{top:.3g} of -∇²L, off the symmetry directions, above rounding {tau:.1e}) while the "
                       "relative gradient is below grad_tol")


def unverified(flat: np.ndarray) -> str:
    return (f"the Hessian has {flat.shape[1]} zero-curvature direction(s) off the symmetries verified on the loss "
            "(a plateau, or a symmetry of these terms that is not known): convergence cannot be certified")


def symmetries(loss: Callable[[np.ndarray, np.ndarray], float], W_A: np.ndarray, W_B: np.ndarray,
               kernels: tuple, ranges: bool = False) -> tuple[str | None, bool]:
    r"""Which candidate symmetries the loss really has at $(W_A, W_B)$: `(group, kernel moves)`.

    Candidates: the $GL(m)$ orbit $(e^{s\xi}W_A, e^{-s\xi^\top}W_B)$, else its $O(m)$ part
    ($\xi^\top = -\xi$, the same formula), and moves $W + s\,c\,n^\top$ of a row along $n \in \ker\Sigma$.
    Each is accepted only when the loss, *evaluated along the curve* at finite $s$ ($\pm 10\%$ of
    $\|W\|$, three random generators), stays within $10^{-6}$ of what a random move of the same size
    changes it by (plus rounding): a loss that is not invariant changes along a random generator by
    a comparable amount, so the two are far apart. `kernels`: the null bases of $\Sigma_A$, $\Sigma_B$
    (columns), or with `ranges` their range bases (None: no kernel)."""
    rng = np.random.default_rng(4)
    L0 = loss(W_A, W_B)
    norm = float(np.sqrt(np.sum(W_A**2) + np.sum(W_B**2)))

    def tolerance(size: float) -> float:
        ref = 0.0
        for _ in range(2):
            ZA, ZB = rng.standard_normal(W_A.shape), rng.standard_normal(W_B.shape)
            z = size / np.sqrt(np.sum(ZA**2) + np.sum(ZB**2))
            ref = max(ref, abs(loss(W_A + z * ZA, W_B + z * ZB) - L0))
        return 1e-6 * ref + 1e3 * np.finfo(float).eps * abs(L0)

    def flat(curve: Callable[[float], tuple[np.ndarray, np.ndarray]], tol: float) -> bool:
        return all(abs(loss(*curve(sv)) - L0) <= tol for sv in (0.1, -0.1))

    # The orbits move W by about 0.1‖W‖; kernel moves by 0.1·max(‖W‖, 1) (at W = 0 every orbit is a point,
    # but a translation is not).
    tol_orbit, scale = tolerance(0.1 * norm), max(norm, 1.0)
    tol_move = tolerance(0.1 * scale)

    m = W_A.shape[0]
    group = None
    for name in ("GL", "O"):
        ok = True
        for _ in range(3):
            xi = rng.standard_normal((m, m))
            xi = xi - xi.T if name == "O" else xi
            size = np.linalg.norm(xi)
            if size == 0:
                ok = False
                break
            xi = xi / size
            ok = flat(lambda sv, xi=xi: (expm(sv * xi) @ W_A, expm(-sv * xi.T) @ W_B), tol_orbit)
            if not ok:
                break
        if ok:
            group = name
            break
    ker = True
    for k, K in enumerate(kernels):
        d = (W_A, W_B)[k].shape[1]
        for _ in range(3):
            if ranges:
                if K is None:
                    break
                nv = rng.standard_normal(d)
                nv = nv - K @ (K.T @ nv)
            else:
                if K.shape[1] == 0:
                    break
                nv = K @ rng.standard_normal(K.shape[1])
            nv = nv / np.linalg.norm(nv)
            move = 0.1 * scale * np.outer(rng.standard_normal(m) / np.sqrt(m), nv)
            ker = ker and flat(lambda sv, k=k, mv=move: (W_A + sv * mv, W_B) if k == 0 else (W_A, W_B + sv * mv),
                               tol_move)
    return group, ker
