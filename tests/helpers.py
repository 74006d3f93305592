"""Shared test helpers: Hypothesis strategies that build instances *by construction*."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from cdyn import numerics


@st.composite
def problems(draw, max_r: int = 3, max_extra_d: int = 3, max_m: int = 3, noise: bool = True,
             sigma_z: bool = True, lam: tuple[float, float] = (0.5, 2.0)) -> numerics.Problem:
    """Random orthonormal bases × drawn spectra (+ optional isotropic noise and a random Σ_z)."""
    r = draw(st.integers(1, max_r))
    d_A = r + draw(st.integers(0, max_extra_d))
    d_B = r + draw(st.integers(0, max_extra_d))
    m = draw(st.integers(1, max_m))
    spec = st.lists(st.floats(0.3, 2.0), min_size=r, max_size=r)
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    A = numerics.random_orthonormal(rng, d_A, r) @ np.diag(draw(spec)) @ numerics.random_orthonormal(rng, r, r).T
    B = numerics.random_orthonormal(rng, d_B, r) @ np.diag(draw(spec)) @ numerics.random_orthonormal(rng, r, r).T
    A_xi = B_xi = Sz = None
    if noise:
        k_A, k_B = draw(st.integers(0, 2)), draw(st.integers(0, 2))
        A_xi = 0.3 * rng.standard_normal((d_A, k_A)) if k_A else None
        B_xi = 0.3 * rng.standard_normal((d_B, k_B)) if k_B else None
    if sigma_z and draw(st.booleans()):
        V = numerics.random_orthonormal(rng, r, r)
        Sz = V @ np.diag(rng.uniform(0.5, 1.5, r)) @ V.T
    return numerics.Problem(A=A, B=B, A_xi=A_xi, B_xi=B_xi, Sigma_z=Sz, m=m,
                            lam=draw(st.floats(*lam)), mu=draw(st.floats(0.0, 0.5)))


def weights(p: numerics.Problem, scale: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return scale * rng.standard_normal((p.m, p.d_A)), scale * rng.standard_normal((p.m, p.d_B))


def central_difference(f, X: np.ndarray, h: float) -> np.ndarray:
    """∂f/∂X by central differences, entry by entry."""
    G = np.zeros_like(X)
    for idx in np.ndindex(*X.shape):
        E = np.zeros_like(X)
        E[idx] = h
        G[idx] = (f(X + E) - f(X - E)) / (2 * h)
    return G


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))
