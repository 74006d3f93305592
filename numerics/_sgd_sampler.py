r"""Batches in their factors $(Z, \Xi_A, \Xi_B)$, from the same random stream as `sample_pairs`.

The full form of `sgd` draws fresh pairs `chunk` rows at a time with `sample_pairs`, which
consumes the generator in one fixed order per chunk: $u$ (chunk $\times r$), then $\Xi_A$
(chunk $\times k_A$), then $\Xi_B$ (chunk $\times k_B$), and returns
$X_A = ZA^\top + \Xi_A A_\xi^\top$. The structured form needs the factors themselves, and only
one batch of them at a time. NumPy's `Generator` draws a block of normals as the same
sequence whether in one call or in consecutive pieces, so the stream is reproduced piece
by piece:

* $Z$ for the whole chunk ($r$ columns: small) as `sample_pairs` computes it;
* $\Xi_B$ of batch $j$ from the main generator, right after the $\Xi_A$ section;
* $\Xi_A$ of batch $j$ either from a buffer of the whole section (when it fits in
  `BUFFER_BYTES`), or from a copy of the generator taken at the start of the section, which
  is then skipped on the main generator by drawing it once more in batch-sized pieces into
  one scratch array. That costs one more draw of $\Xi_A$ per step, and keeps the memory
  $O(n\,k)$ instead of $O(\text{chunk}\cdot k)$: at $d = 4096$ an 8192-row section is 256 MiB,
  more than a $d\times d$ matrix.

With `n_data` the data set is drawn as `sample_pairs` would, kept as its factors, and each
epoch reshuffled by the same permutation draws.
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np

from ._problem import Problem
from ._sampling import _draw_unit, sqrt_psd

#: Largest $\Xi_A$ section of a chunk kept in memory; above it the section is drawn twice.
BUFFER_BYTES = 32 * 2**20
Factors = tuple[np.ndarray, np.ndarray, np.ndarray]


def chunk_rows(batch: int) -> int:
    """Rows of fresh pairs drawn at a time (as the full form's sampler): a multiple of `batch`."""
    return max(1, 8192 // batch) * batch


def _latent(p: Problem, rows: int, rng: np.random.Generator, z_dist: str) -> np.ndarray:
    u = _draw_unit(rng, (rows, p.r), z_dist)
    if np.array_equal(p.Sigma_z, np.eye(p.r)):  # as the full form: no square root of I
        return u
    return u @ sqrt_psd(p.Sigma_z, name="Sigma_z").T


def factor_sampler(p: Problem, batch: int, n_data: int | None, rng: np.random.Generator,
                   z_dist: str) -> Callable[[], Factors]:
    """A function returning the next batch as `(Z, Xi_A, Xi_B)` (rows: pairs)."""
    k_A, k_B = p.A_xi.shape[1], p.B_xi.shape[1]
    if n_data is not None:
        Z = _latent(p, n_data, rng, z_dist)
        Xi_A, Xi_B = rng.standard_normal((n_data, k_A)), rng.standard_normal((n_data, k_B))
        epoch = {"order": np.empty(0, dtype=int), "pos": 0}

        def draw() -> Factors:
            if epoch["pos"] + batch > epoch["order"].size:  # new epoch; the incomplete tail is dropped
                epoch["order"], epoch["pos"] = rng.permutation(n_data), 0
            idx = epoch["order"][epoch["pos"]: epoch["pos"] + batch]
            epoch["pos"] += batch
            return Z[idx], Xi_A[idx], Xi_B[idx]

        return draw

    chunk = chunk_rows(batch)
    buffered = chunk * k_A * 8 <= BUFFER_BYTES
    state: dict = {"pos": 0}

    def fresh() -> Factors:
        i = state["pos"]
        if i == 0:
            state["Z"] = _latent(p, chunk, rng, z_dist)
            if buffered:
                state["Xi_A"] = rng.standard_normal((chunk, k_A))
            else:
                state["gen_A"] = copy.deepcopy(rng)
                scratch = np.empty((batch, k_A))
                for _ in range(chunk // batch):
                    rng.standard_normal(out=scratch)
        xi_A = state["Xi_A"][i: i + batch] if buffered else state["gen_A"].standard_normal((batch, k_A))
        xi_B = rng.standard_normal((batch, k_B))
        state["pos"] = (i + batch) % chunk
        return state["Z"][i: i + batch], xi_A, xi_B

    return fresh


def factor_memory(batch: int, n_data: int | None, k_A: int, k_B: int, r: int, m: int) -> dict[str, float]:
    r"""Bytes a structured run holds beyond the weights: the batches in their factors (a few at a
    time, a chunk's $Z$ and maybe its $\Xi_A$ section, or the factors of a fixed data set) and
    the step's $m\times n$ features, coefficients and their temporaries (about six)."""
    rows = 3.0 * batch * (k_A + k_B) + 6.0 * m * batch
    if n_data is not None:
        return {"batch": 8.0 * rows, "n_data": 8.0 * n_data * (r + k_A + k_B)}
    chunk = chunk_rows(batch)
    section = chunk * k_A if chunk * k_A * 8 <= BUFFER_BYTES else 0
    return {"batch": 8.0 * (chunk * r + section + rows)}


def batch_matrices(p: Problem, noise: tuple[str, str], levels: tuple[float, float],
                   Z: np.ndarray, Xi_A: np.ndarray, Xi_B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""$X_A = ZA^\top + \Xi_A A_\xi^\top$ ($\sigma_A\Xi_A$ for isotropic noise), $X_B$ likewise: $n\times d$."""
    out = []
    for M, M_xi, Xi, kind, s in ((p.A, p.A_xi, Xi_A, noise[0], levels[0]), (p.B, p.B_xi, Xi_B, noise[1], levels[1])):
        X = Z @ M.T
        if kind == "isotropic":
            X += s * Xi
        elif kind == "thin":
            X += Xi @ M_xi.T
        out.append(X)
    return out[0], out[1]


__all__ = ["BUFFER_BYTES", "batch_matrices", "chunk_rows", "factor_memory", "factor_sampler"]
