"""The structured projector of the matrix-free certificate (`_projector.Projector`) against a dense one.

The oracle is the projector the certificate used before: the orbit tangents as explicit columns
(`_certificate.tangents`, one per generator of GL(m) or O(m)), their rows projected onto range Σ, an
orthonormal basis of their span by SVD (rank cutoff 1e-10 of the largest singular value), and
P v = Π v - Q Qᵀ Π v. The structured one solves the Sylvester equation TᵀT X = Tᵀ v in singular bases instead.
Both are orthogonal projectors onto the same subspace, so they agree to rounding on any vector.
"""

from __future__ import annotations

import numpy as np
import pytest

from cdyn.numerics._certificate import tangents
from cdyn.numerics._projector import Projector

M, NA, NB = 5, 7, 6


def dense_projector(Z_A, Z_B, ranges, group):
    m = Z_A.shape[0]

    def rows(v):
        n = m * Z_A.shape[1]
        parts = []
        for blk, R, d in ((v[:n], ranges[0], Z_A.shape[1]), (v[n:], ranges[1], Z_B.shape[1])):
            V = blk.reshape(m, d)
            parts.append((V if R is None else V @ R @ R.T).ravel())
        return np.concatenate(parts)

    none = (np.zeros((Z_A.shape[1], 0)), np.zeros((Z_B.shape[1], 0)))
    T = tangents(Z_A, Z_B, group, none)
    Q = np.zeros((T.shape[0], 0))
    if T.shape[1]:
        U, s, _ = np.linalg.svd(np.column_stack([rows(t) for t in T.T]), full_matrices=False)
        Q = U[:, s > 1e-10 * s.max()] if s.max() > 0 else U[:, :0]
    return lambda v: rows(v) - Q @ (Q.T @ rows(v)), Q.shape[1]


def low_rank(rng, m, n, k):
    return rng.standard_normal((m, k)) @ rng.standard_normal((k, n))


def instances():
    rng = np.random.default_rng(0)
    R_A, _ = np.linalg.qr(rng.standard_normal((NA, 4)))
    R_B, _ = np.linalg.qr(rng.standard_normal((NB, 3)))
    full = (rng.standard_normal((M, NA)), rng.standard_normal((M, NB)))
    deficient = (low_rank(rng, M, NA, 2), low_rank(rng, M, NB, 3))  # rank 2 and 3 < m: GᴬGᴮ singular
    zero_rows = (np.vstack([rng.standard_normal((3, NA)), np.zeros((2, NA))]),
                 np.vstack([rng.standard_normal((3, NB)), np.zeros((2, NB))]))  # a common null direction
    narrow = (rng.standard_normal((M, 3)), rng.standard_normal((M, 2)))  # n < m: padded singular bases
    one_zero = (np.zeros((M, NA)), rng.standard_normal((M, NB)))
    cases = []
    for zname, Z in (("full", full), ("deficient", deficient), ("zero_rows", zero_rows), ("narrow", narrow),
                     ("one_zero", one_zero)):
        for group in ("GL", "O", None):
            for rname in ("no ranges", "ranges"):
                if rname == "ranges" and zname == "narrow":
                    continue
                ranges = (R_A, R_B) if rname == "ranges" else (None, None)
                cases.append(pytest.param(Z, ranges, group, id=f"{zname}-{group}-{rname}"))
    return cases


@pytest.mark.parametrize("Z, ranges, group", instances())
def test_structured_projector_is_the_dense_one(Z, ranges, group):
    Z_A, Z_B = Z
    P = Projector(Z_A, Z_B, ranges, group)
    Pd, rank = dense_projector(Z_A, Z_B, ranges, group)
    n = Z_A.size + Z_B.size
    rng = np.random.default_rng(1)
    for _ in range(5):
        v = rng.standard_normal(n)
        assert np.linalg.norm(P(v) - Pd(v)) <= 1e-10 * np.linalg.norm(v)
    # An orthogonal projector: P² = P, Pᵀ = P, and it removes exactly the tangents (its trace is n - their rank
    # minus the removed row moves, the same as the dense one's).
    E = np.eye(n)
    Pm = np.column_stack([P(e) for e in E])
    assert np.abs(Pm @ Pm - Pm).max() <= 1e-12
    assert np.abs(Pm - Pm.T).max() <= 1e-12
    Pdm = np.column_stack([Pd(e) for e in E])
    assert round(np.trace(Pm)) == round(np.trace(Pdm))
    assert np.trace(Pm) == pytest.approx(np.trace(Pdm), abs=1e-9)


@pytest.mark.parametrize("group", ["GL", "O"])
def test_tangents_are_removed(group):
    """Every orbit tangent at Z (after the row projection) is in the kernel of P."""
    rng = np.random.default_rng(2)
    Z_A, Z_B = rng.standard_normal((M, NA)), low_rank(rng, M, NB, 2)
    R_A, _ = np.linalg.qr(rng.standard_normal((NA, 4)))
    P = Projector(Z_A, Z_B, (R_A, None), group)
    for t in tangents(Z_A, Z_B, group, (np.zeros((NA, 0)), np.zeros((NB, 0)))).T:
        assert np.linalg.norm(P(t)) <= 1e-12 * max(1.0, np.linalg.norm(t))


def test_unknown_group_is_refused():
    with pytest.raises(ValueError, match="group"):
        Projector(np.ones((2, 3)), np.ones((2, 3)), (None, None), "SO")
