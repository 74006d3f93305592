r"""SGD on the structured form (issue 12, item 5): the feature form of the batch gradients
(`theory._batch_structured`), the factor sampler (`numerics._sgd_sampler`) and `sgd(path=...)`.

Oracles: the full form (`path="full"`, the lifted estimators of `theory._batch` on the batch
matrices, drawn by `sample_pairs`), central differences of the compiled batch loss, and a
memory bound derived from the arrays a step holds.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import sympy as sp

from cdyn import numerics, theory
from cdyn.numerics import _sgd_sampler
from cdyn.numerics._batch_structured import structured_batch_function
from cdyn.numerics._sgd import STRUCTURED_FROM_D
from cdyn.numerics._sgd_sampler import batch_matrices
from cdyn.numerics._structured import noise_kinds
from cdyn.theory import _batch_structured as tbs
from cdyn.theory._batch import X_A, X_B
from tests.helpers import central_difference

S = theory.symbols
# A short run: rounding differences (~1e-16 a step, from the other order of the products)
# grow at most by the step map's Lipschitz constant per step, far from 1e-12 over 60 steps here.
RTOL = 1e-12


def _problem(noise: str, seed: int = 1) -> numerics.Problem:
    rng = np.random.default_rng(seed)
    d_A, d_B = 7, 9
    p = numerics.random_problem([1.5, 0.6, 0.3], [1.2, 0.5, 0.4], d_A=d_A, d_B=d_B, m=3, seed=seed,
                                noise_A=0.2, noise_B=0.1)
    if noise == "thin":
        return p.replace(A_xi=0.3 * rng.standard_normal((d_A, 2)), B_xi=0.2 * rng.standard_normal((d_B, 3)))
    if noise == "dense":
        return p.replace(A_xi=0.2 * rng.standard_normal((d_A, d_A)), B_xi=0.2 * rng.standard_normal((d_B, d_B)))
    if noise == "none":
        return p.replace(A_xi=None, B_xi=None, Sigma_z=np.diag([1.0, 0.5, 2.0]) + 0.1)
    return p


def _gap(a, b) -> float:
    return max(np.abs(a.W_A - b.W_A).max() / np.abs(b.W_A).max(), np.abs(a.W_B - b.W_B).max() / np.abs(b.W_B).max())


@pytest.mark.parametrize("noise", ["isotropic", "thin", "dense", "none"])
@pytest.mark.parametrize("kw", [{}, {"n_data": 40}, {"loss": "pos-only", "weight_decay": 0.1}, {"loss": "clip"},
                                {"negatives": "v", "z_dist": "student-t"}])
def test_structured_sgd_is_the_full_sgd(noise, kw):
    p = _problem(noise)
    W = numerics.random_init(p, 0.3, 2)
    full = numerics.sgd(p, *W, 0.05, steps=60, batch=8, seed=3, n_points=7, path="full", **kw)
    fast = numerics.sgd(p, *W, 0.05, steps=60, batch=8, seed=3, n_points=7, path="structured", **kw)
    assert (full.path, fast.path) == ("full", "structured")
    assert noise_kinds(p)[0] == {"isotropic": ("isotropic",) * 2, "none": ("none",) * 2}.get(noise, ("thin", "thin"))
    assert _gap(fast, full) < RTOL
    assert np.allclose(fast.batch_loss, full.batch_loss, rtol=RTOL, atol=0)
    assert np.array_equal(fast.t, full.t) and fast.status == full.status == "completed"
    # below STRUCTURED_FROM_D (here d ≤ 9) auto keeps the full form: the same numbers as before
    auto = numerics.sgd(p, *W, 0.05, steps=60, batch=8, seed=3, n_points=7, **kw)
    assert auto.path == "full" and np.array_equal(auto.W_A, full.W_A) and max(p.d_A, p.d_B) < STRUCTURED_FROM_D


@pytest.mark.parametrize("noise", ["isotropic", "thin"])
def test_unbuffered_sections_give_the_same_stream(noise, monkeypatch):
    """Batch 3000: a chunk is 6000 rows, so 5 steps cross two chunk starts. With no buffer the
    Ξ_A section is skipped and drawn again from a copy of the generator: the same numbers."""
    p = _problem(noise)
    W = numerics.random_init(p, 0.3, 2)
    kw = dict(steps=5, batch=3000, seed=7, n_points=6)
    full = numerics.sgd(p, *W, 0.05, path="full", **kw)
    buffered = numerics.sgd(p, *W, 0.05, path="structured", **kw)
    monkeypatch.setattr(_sgd_sampler, "BUFFER_BYTES", 0)
    skipped = numerics.sgd(p, *W, 0.05, path="structured", **kw)
    assert np.array_equal(skipped.W_A, buffered.W_A) and np.array_equal(skipped.W_B, buffered.W_B)
    assert _gap(skipped, full) < RTOL


def test_feature_form_is_the_lifted_gradient():
    """P_A X_A + R_A gives back the lifted gradient (checked inside `feature_form`); the
    coefficient of `neg` is the U-statistic one; a chain that does not pair W with its batch is refused."""
    for name in ("pos", "neg", "wd"):
        bt = theory.batch_term(name)
        P, R = tbs.feature_form(bt.grad_A, X_A, name)
        assert sp.expand((tbs.from_features(P * X_A) + R - bt.grad_A).doit()) == sp.ZeroMatrix(*bt.grad_A.shape)
        assert not (P.atoms(sp.MatrixSymbol) & {S.W_A, S.W_B, X_A, X_B})
    n = theory.batch.n
    P, _ = tbs.feature_form(theory.batch_term("neg").grad_A, X_A, "neg")
    expected = (tbs.F_B * tbs.F_B.T * tbs.F_A - tbs.F_B * sp.HadamardProduct(tbs.F_B.T * tbs.F_A, sp.Identity(n))) \
        / (n * (n - 1))
    assert sp.expand((P - expected).doit()) == sp.ZeroMatrix(*P.shape)
    with pytest.raises(tbs.NotFeatureForm, match="terms"):
        tbs.feature_form(S.W_B * X_B.T * X_A * S.A * S.A.T, X_A, "bad")
    with pytest.raises(ValueError, match="noise_A"):
        tbs.feature_batch(("pos",), "u", "dense")
    assert tbs.batch_in_factors()[X_A] == tbs.Z * S.A.T + tbs.Xi_A * S.A_xi.T


@pytest.mark.parametrize("noise", ["isotropic", "thin"])
def test_compiled_structured_gradient_is_the_derivative_of_its_loss(noise):
    """Central differences of the compiled batch loss (a quartic in W: the error is
    ε|L|/h + h²|L'''| ≈ 1e-10 + 1e-12 relative for h = 1e-6, entries of size 1)."""
    p = _problem(noise).replace(mu=0.2)
    rng = np.random.default_rng(4)
    W_A, W_B = numerics.random_init(p, 0.7, 5)
    n = 5
    Z, Xi_A, Xi_B = (rng.standard_normal((n, k)) for k in (p.r, p.A_xi.shape[1], p.B_xi.shape[1]))
    fn = structured_batch_function(p, ("pos", "neg", "wd"), n)
    _, gA, gB = fn(W_A, W_B, Z, Xi_A, Xi_B)
    fd_A = central_difference(lambda X: fn(X, W_B, Z, Xi_A, Xi_B)[0], W_A, 1e-6)
    fd_B = central_difference(lambda X: fn(W_A, X, Z, Xi_A, Xi_B)[0], W_B, 1e-6)
    assert np.abs(gA - fd_A).max() < 1e-8 * np.abs(gA).max()
    assert np.abs(gB - fd_B).max() < 1e-8 * np.abs(gB).max()
    # the same estimator as the lifted one on the batch matrices
    kinds, levels = noise_kinds(p)
    XA, XB = batch_matrices(p, kinds, levels, Z, Xi_A, Xi_B)
    L, fA, fB = numerics.batch_function(p, ("pos", "neg", "wd"), n)(W_A, W_B, XA, XB)
    assert np.allclose(gA, fA, rtol=1e-13, atol=1e-14 * np.abs(fA).max()) and np.allclose(gB, fB, rtol=1e-13,
                                                                                     atol=1e-14 * np.abs(fB).max())
    assert fn(W_A, W_B, Z, Xi_A, Xi_B)[0] == pytest.approx(L, rel=1e-13)


@pytest.mark.parametrize("loss", ["spectral", "clip"])
def test_auto_takes_the_structured_form_from_d_16(loss):
    p = numerics.random_problem([1.5, 0.6], [1.2, 0.5], d_A=STRUCTURED_FROM_D, d_B=5, m=2, noise_A=0.1, seed=2)
    W = numerics.random_init(p, 0.3, 1)
    auto = numerics.sgd(p, *W, 0.05, steps=20, batch=8, seed=1, n_points=3, loss=loss)
    full = numerics.sgd(p, *W, 0.05, steps=20, batch=8, seed=1, n_points=3, loss=loss, path="full")
    assert auto.path == "structured" and _gap(auto, full) < RTOL


def test_path_is_validated_and_named():
    p = _problem("isotropic")
    W = numerics.random_init(p, 0.3, 2)
    for bad in ("reduced", "Full", 3):
        with pytest.raises(ValueError, match="^path: "):
            numerics.sgd(p, *W, 0.05, steps=2, batch=8, path=bad)


def test_no_d_by_d_array_at_d_4096(monkeypatch):
    r"""Peak traced memory of a structured run at $d = 4096$, $r = m = 8$, batch $b = 256$, isotropic
    noise, over two chunk starts. Chunks are shortened to 5 batches (`chunk_rows`; still above
    `BUFFER_BYTES`, so the skipping branch runs), and the second start comes at step 6, not 33:
    the chunk length changes which rows are drawn, not what a step holds.

    What a step holds, with $U = m d\cdot 8$ B (one weight matrix) and $V = b d\cdot 8$ B (one view's
    $\Xi$ for a batch): at a chunk start the previous batch ($2V$), the skip's scratch ($V$) and
    the new batch ($2V$): $5V$; the old and the new chunk of $Z$, $2\cdot\text{chunk}\cdot r\cdot 8$ B;
    weights: the validated start, snapshot 0, the current and the next $(W_A, W_B)$, and per view at
    most four $m\times d$ temporaries of the gradient and the update while the other view's gradient
    is held: at most $16U$; plus 1 MiB for small arrays and Python objects. The bound is below one
    $d\times d$ array (128 MiB), so forming one, or buffering a chunk's $\Xi_A$, fails the test."""
    d, rm, b = 4096, 8, 256
    chunk = 5 * b
    monkeypatch.setattr(_sgd_sampler, "chunk_rows", lambda batch: 5 * batch)
    p = numerics.random_problem(tuple(np.geomspace(2, 0.4, rm)), tuple(np.geomspace(1.8, 0.45, rm)), d_A=d, d_B=d,
                                m=rm, noise_A=0.1, noise_B=0.1)
    W = numerics.random_init(p, 1e-2)
    structured_batch_function(p, ("pos", "neg"), b)  # compile outside the measurement
    U, V = rm * d * 8, b * d * 8
    bound = 5 * V + 2 * chunk * rm * 8 + 16 * U + 2**20
    assert bound < d * d * 8 and chunk * d * 8 > _sgd_sampler.BUFFER_BYTES  # the skipping branch runs
    tracemalloc.start()
    try:
        run = numerics.sgd(p, *W, 0.01, steps=6, batch=b, n_points=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert run.path == "structured" and run.status == "completed"
    assert peak < bound, f"peak {peak / 2**20:.1f} MiB, bound {bound / 2**20:.1f} MiB"
