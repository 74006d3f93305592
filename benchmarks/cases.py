"""The instances the benchmark runs on (seeded; spectra clearly non-isotropic)."""

from __future__ import annotations

import numpy as np

from cdyn import numerics


def scaling_problem(d: int, r: int, m: int, seed: int = 1) -> numerics.Problem:
    """Signal strengths over a factor ~3 per view, differently mixed, isotropic noise σ = 0.1."""
    return numerics.random_problem(np.geomspace(1.0, 0.3, r), np.geomspace(0.9, 0.35, r), d_A=d, d_B=d, m=m,
                                   noise_A=0.1, noise_B=0.1, lam=1.0, seed=seed)


def small_init(p: numerics.Problem, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows of norm ~1e-2 whatever d is (entries 1e-2/√d)."""
    return numerics.random_init(p, 1e-2 / np.sqrt(max(p.d_A, p.d_B)), seed)


def stiff_problem(d: int, r: int, m: int, seed: int = 3) -> numerics.Problem:
    r"""Aligned views, $a_i = b_i$ over a factor $10^{1.6}$: $\kappa_C = (a_1/a_r)^2 \approx 1.6\cdot 10^3$."""
    a = np.geomspace(1.0, 10**-1.6, r)
    return numerics.random_problem(a, a, d_A=d, d_B=d, m=m, noise_A=0.05, noise_B=0.05, lam=1.0, seed=seed,
                                   shared_right=True)
