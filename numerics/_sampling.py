r"""Sampling positive pairs from the multimodal linear data model.

The data model (THEORY.md, section 1) is

$$
x_A = A z + A_\xi \xi_A \in \mathbb{R}^{d_A}, \qquad
x_B = B z + B_\xi \xi_B \in \mathbb{R}^{d_B},
$$

with a shared latent $z \in \mathbb{R}^r$ per pair ($\mathbb{E} z = 0$,
$\mathbb{E} z z^\top = \Sigma_z$) and independent noises $\xi_A, \xi_B$ with
identity covariance. Its second moments are

$$
\Sigma_A = A \Sigma_z A^\top + A_\xi A_\xi^\top, \qquad
C = \mathbb{E}\, x_A x_B^\top = A \Sigma_z B^\top .
$$

The latent is generated as $z = L u$ with $L L^\top = \Sigma_z$ and $u$ i.i.d.
with unit variance, so non-Gaussian laws (Rademacher, Student-t) keep the same
second moments: the population loss only sees those, while mini-batch training
sees the whole law.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Z_DISTRIBUTIONS", "sample_pairs", "sqrt_psd"]

Z_DISTRIBUTIONS: tuple[str, ...] = ("gaussian", "rademacher", "student-t")

# df = 5 is the smallest integer with a finite fourth moment, so sample
# covariances of the data still have a finite variance (needed by any test that
# compares them to the population moments with a standard error).
_STUDENT_T_DF = 5.0


def sqrt_psd(S: np.ndarray, *, name: str = "Sigma_z") -> np.ndarray:
    r"""Symmetric square root $L = V \operatorname{diag}(\sqrt{\lambda}) V^\top$.

    Uses `eigh` rather than Cholesky so that singular PSD matrices work: a
    rank-deficient $\Sigma_z$ simply confines $z$ to a subspace. Eigenvalues
    at rounding level ($|\lambda| \le r\,\epsilon_{\text{mach}}\lambda_{\max}$)
    are set to $0$; clearly negative ones raise `ValueError` naming `name`.

    **Returns** $L$ with $L L^\top = S$ (and $L = L^\top$).
    """
    S = np.asarray(S, dtype=float)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {S.shape}")
    if not np.all(np.isfinite(S)):
        raise ValueError(f"{name} must be finite")
    scale = max(float(np.max(np.abs(S), initial=0.0)), 1.0)
    if not np.allclose(S, S.T, rtol=0.0, atol=1e-10 * scale):
        raise ValueError(f"{name} must be symmetric")
    # Symmetrise so eigh sees exactly the matrix it assumes it is given.
    w, V = np.linalg.eigh(0.5 * (S + S.T))
    w_max = float(np.max(np.abs(w), initial=0.0))
    if w.size and w.min() < -1e-10 * max(w_max, 1.0):
        raise ValueError(
            f"{name} must be positive semi-definite (min eigenvalue {w.min():.3g})"
        )
    # A null eigenvalue comes out of eigh as +-1e-16 * w_max; its square root
    # (~1e-8) would leak z out of range(Sigma_z), so zero it outright.
    w = np.where(w > S.shape[0] * np.finfo(float).eps * w_max, w, 0.0)
    return (V * np.sqrt(w)) @ V.T


def _draw_unit(
    rng: np.random.Generator, shape: tuple[int, ...], z_dist: str
) -> np.ndarray:
    r"""I.i.d. draws with mean $0$ and variance $1$ from the named law."""
    if z_dist == "gaussian":
        return rng.standard_normal(shape)
    if z_dist == "rademacher":
        return 2.0 * rng.integers(0, 2, size=shape).astype(float) - 1.0
    if z_dist == "student-t":
        # Var t_ν = ν/(ν-2); rescale so only the tails differ from a Gaussian.
        df = _STUDENT_T_DF
        return rng.standard_t(df, size=shape) * np.sqrt((df - 2.0) / df)
    raise ValueError(
        f"z_dist must be one of {Z_DISTRIBUTIONS}, got {z_dist!r}"
    )


def _as_matrix(M: np.ndarray | None, rows: int, name: str) -> np.ndarray:
    r"""Validate a mixing matrix with `rows` rows; `None` means no columns."""
    if M is None:
        return np.zeros((rows, 0))
    M = np.asarray(M, dtype=float)
    if M.ndim != 2 or M.shape[0] != rows:
        raise ValueError(f"{name} must have shape ({rows}, k), got {M.shape}")
    if not np.all(np.isfinite(M)):
        raise ValueError(f"{name} must be finite")
    return M


def sample_pairs(
    A: np.ndarray,
    B: np.ndarray,
    A_xi: np.ndarray | None,
    B_xi: np.ndarray | None,
    Sigma_z: np.ndarray | None,
    n: int,
    rng: np.random.Generator,
    z_dist: str = "gaussian",
) -> tuple[np.ndarray, np.ndarray]:
    r"""Draw $n$ positive pairs $(x_A^{(i)}, x_B^{(i)})$ from the data model.

    Each pair shares one latent $z^{(i)} = L u^{(i)}$ ($L = \Sigma_z^{1/2}$,
    $u$ i.i.d. unit-variance from `z_dist`); the noises
    $\xi_A^{(i)} \sim \mathcal{N}(0, I_{k_A})$ and
    $\xi_B^{(i)} \sim \mathcal{N}(0, I_{k_B})$ are independent of everything.

    **Parameters**

    - `A`: $d_A \times r$; `B`: $d_B \times r$.
    - `A_xi`: $d_A \times k_A$, `B_xi`: $d_B \times k_B$ ($k = 0$ or `None`
      means noiseless).
    - `Sigma_z`: $r \times r$ symmetric PSD (may be singular), or `None` for
      $I_r$.
    - `n`: number of pairs, $n \ge 1$.
    - `rng`: a `numpy.random.Generator`; required so every draw is
      reproducible from its seed.
    - `z_dist`: one of `Z_DISTRIBUTIONS`.

    **Returns** `(X_A, X_B)` of shapes $n \times d_A$ and $n \times d_B$; row
    $i$ of each is the $i$-th pair, so $X_A^\top X_B / n \to A \Sigma_z B^\top$.

    **Raises** `ValueError` naming the offending argument.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng must be a numpy.random.Generator")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"n must be an integer, got {n!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if z_dist not in Z_DISTRIBUTIONS:
        raise ValueError(
            f"z_dist must be one of {Z_DISTRIBUTIONS}, got {z_dist!r}"
        )

    A = np.asarray(A, dtype=float)
    B = np.asarray(B, dtype=float)
    if A.ndim != 2:
        raise ValueError(f"A must be a 2-D (d_A, r) matrix, got shape {A.shape}")
    if B.ndim != 2 or B.shape[1] != A.shape[1]:
        raise ValueError(
            f"B must have shape (d_B, {A.shape[1]}) to match A, got {B.shape}"
        )
    d_A, r = A.shape
    d_B = B.shape[0]
    A_xi = _as_matrix(A_xi, d_A, "A_xi")
    B_xi = _as_matrix(B_xi, d_B, "B_xi")

    u = _draw_unit(rng, (n, r), z_dist)
    if Sigma_z is None:
        # Skip the square root: identity is exact, and avoids rounding noise.
        Z = u
    else:
        Sz = np.asarray(Sigma_z, dtype=float)
        if Sz.shape != (r, r):
            raise ValueError(f"Sigma_z must have shape ({r}, {r}), got {Sz.shape}")
        L = sqrt_psd(Sz, name="Sigma_z")
        Z = u @ L.T

    # A fixed draw order (u, then xi_A, then xi_B) makes the output a pure
    # function of the seed, so experiments can be replayed exactly.
    xi_A = rng.standard_normal((n, A_xi.shape[1]))
    xi_B = rng.standard_normal((n, B_xi.shape[1]))
    X_A = Z @ A.T + xi_A @ A_xi.T
    X_B = Z @ B.T + xi_B @ B_xi.T
    return X_A, X_B
