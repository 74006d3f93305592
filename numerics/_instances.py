"""Seeded constructors: random instances from chosen spectra, and the built-in default."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ._problem import Problem
from ._budget import check_memory, problem_memory
from ._validate import MAX_LOG10_MOMENT, as_int, as_real


def random_orthonormal(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """A Haar-random rows×cols matrix with orthonormal columns (QR with sign fix)."""
    q, rr = np.linalg.qr(rng.standard_normal((rows, cols)))
    return q * np.sign(np.diag(rr))


def _spectrum(name: str, values: Sequence[float], r: int) -> np.ndarray:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"{name}: expected a sequence of singular values, got {type(values).__name__}")
    arr = np.asarray([as_real(f"{name}[{i}]", v, low=0.0, strict=True) for i, v in enumerate(values)])
    if arr.shape != (r,):
        raise ValueError(f"{name}: expected {r} singular values, got {arr.shape[0]}")
    if r == 0:
        raise ValueError(f"{name}: must not be empty (r = its length is the signal dimension, at least 1)")
    # The moments hold a², so a beyond 1e150 overflows float64 (checked here to name the entry).
    i = int(np.argmax(arr))
    if 2 * np.log10(arr[i]) > MAX_LOG10_MOMENT:
        raise ValueError(f"{name}[{i}]: {arr[i]:.3g} is too large: the moments hold its square, beyond float64")
    return arr


def random_problem(
    spectrum_A: Sequence[float],
    spectrum_B: Sequence[float],
    *,
    d_A: int,
    d_B: int,
    m: int,
    noise_A: float = 0.0,
    noise_B: float = 0.0,
    lam: float = 1.0,
    mu: float = 0.0,
    shared_right: bool = False,
    seed: int = 0,
) -> Problem:
    r"""$A = U_A\,\mathrm{diag}(a)\,V_A^\top$, $B = U_B\,\mathrm{diag}(b)\,V_B^\top$ with Haar bases.

    `shared_right=True` gives $V_A = V_B$ (the decoupled geometry of THEORY §5);
    otherwise the two views mix the signal differently. Noise is isotropic:
    $A_\xi = \sigma_A I$.
    """
    r = len(spectrum_A) if hasattr(spectrum_A, "__len__") and not isinstance(spectrum_A, (str, bytes)) else 0
    a, b = _spectrum("spectrum_A", spectrum_A, r), _spectrum("spectrum_B", spectrum_B, r)
    d_A, d_B = as_int("d_A", d_A), as_int("d_B", d_B)
    if d_A < r or d_B < r:
        raise ValueError(f"d_A, d_B: must be >= r = {r}, got {d_A}, {d_B}")
    noise_A = as_real("noise_A", noise_A, low=0.0)
    noise_B = as_real("noise_B", noise_B, low=0.0)
    if not isinstance(shared_right, bool):
        raise TypeError(f"shared_right: expected True or False, got {type(shared_right).__name__}")
    for name, sigma in (("noise_A", noise_A), ("noise_B", noise_B)):
        if sigma > 0 and 2 * np.log10(sigma) > MAX_LOG10_MOMENT:
            raise ValueError(f"{name}: {sigma:.3g} is too large: the moments hold its square, beyond float64")
    # isotropic noise is kept as σ (Problem), not as a d×d matrix
    check_memory(problem_memory(d_A, d_B, r, False, False), "the instance")
    rng = np.random.default_rng(as_int("seed", seed, low=0))
    V_A = random_orthonormal(rng, r, r)
    V_B = V_A if shared_right else random_orthonormal(rng, r, r)
    A = random_orthonormal(rng, d_A, r) @ np.diag(a) @ V_A.T
    B = random_orthonormal(rng, d_B, r) @ np.diag(b) @ V_B.T
    # σ as a scalar: Problem keeps isotropic noise as σ (an O(d) view of σI), never a d×d array
    return Problem(A=A, B=B, A_xi=noise_A if noise_A > 0 else None, B_xi=noise_B if noise_B > 0 else None,
                   m=m, lam=lam, mu=mu)


#: The built-in instance: r = m = 4 signal directions whose strengths span a factor 5,
#: differently mixed in the two views, with small isotropic noise.
DEFAULT_SPECTRUM_A = (2.0, 1.2, 0.7, 0.4)
DEFAULT_SPECTRUM_B = (1.8, 1.1, 0.75, 0.45)


def default_problem(seed: int = 0) -> Problem:
    """The built-in, clearly non-isotropic instance used by `cdyn simulate`."""
    return random_problem(DEFAULT_SPECTRUM_A, DEFAULT_SPECTRUM_B, d_A=8, d_B=8, m=4,
                          noise_A=0.1, noise_B=0.1, lam=1.0, seed=seed)


def random_init(p: Problem, scale: float = 1e-3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian $W_A, W_B$ with entries of standard deviation `scale`."""
    scale = as_real("scale", scale, low=0.0, strict=True)
    check_memory({"m": 8.0 * p.m * (p.d_A + p.d_B)}, "the initial weights")
    rng = np.random.default_rng(as_int("seed", seed, low=0))
    return scale * rng.standard_normal((p.m, p.d_A)), scale * rng.standard_normal((p.m, p.d_B))
