"""The caches and shortcuts that make `cdyn verify` faster change no number (issue 12).

Each shortcut is compared with the slow way it replaces, to the bit: `cdyn verify`'s
results.json must stay byte-identical for a seed.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from cdyn import numerics, theory
from cdyn.numerics import _flowfn, _problem
from cdyn.numerics._autochoice import limit_threads
from cdyn.numerics._compile import compile_exprs
from cdyn.numerics._structured import values_for


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_limit_threads_limits_and_restores():
    before = _blas_threads()
    with limit_threads(1, "blas"):
        assert _blas_threads() == [1] * len(before)
        with limit_threads(1):  # nested, all APIs, from the kept controller
            assert _blas_threads() == [1] * len(before)
        assert _blas_threads() == [1] * len(before)
    assert _blas_threads() == before


def _run(p, W0, **kw):
    return numerics.integrate(p, *W0, 6.0, ("pos", "neg"), rtol=1e-10, atol=1e-14, n_points=31, method="LSODA",
                              jac=False, **kw)


@pytest.mark.parametrize("path", ["full", "reduced"])
def test_dense_output_off_gives_the_same_grid_bits(path):
    p = numerics.default_problem(seed=3)
    W0 = numerics.random_init(p, 1e-2, 1)
    kept, off = _run(p, W0, path=path), _run(p, W0, path=path, dense_output=False)
    assert kept.dense is not None and off.dense is None and off.t_steps is None
    assert kept.nfev == off.nfev and kept.status == off.status
    assert np.array_equal(kept.t, off.t)
    assert np.array_equal(kept.W_A, off.W_A) and np.array_equal(kept.W_B, off.W_B)


def test_dense_output_is_checked():
    p = numerics.default_problem(seed=0)
    with pytest.raises(TypeError, match="dense_output"):
        _run(p, numerics.random_init(p, 1e-2, 0), dense_output="no")


def test_cached_moments_equal_a_fresh_compile():
    # Two problems of one shape share the compiled moments; the values are those of a fresh compile.
    p1 = numerics.default_problem(seed=1)
    p2 = numerics.default_problem(seed=2)
    _ = p1.Sigma_A, p2.Sigma_A
    key = tuple(sorted(p2.dims.items(), key=lambda kv: kv[0].name))
    sa, sb = p2.__dict__["_cdyn_levels"]
    kinds = tuple("isotropic" if v else "thin" for v in (sa, sb)) if sa or sb else None
    assert _problem._moments_code(kinds, key) is _problem._moments_code(kinds, key)
    hits = _problem._moments_code.cache_info().hits
    _ = numerics.default_problem(seed=4).C
    assert _problem._moments_code.cache_info().hits == hits + 1
    fresh = _problem._moments_code.__wrapped__(kinds, key)
    assert fresh.source == _problem._moments_code(kinds, key).source


def test_flow_loss_compiled_on_first_use_only():
    p = numerics.random_problem([2.0, 1.0, 0.5], [1.5, 1.0, 0.6], d_A=5, d_B=6, m=2, noise_A=0.1, noise_B=0.2,
                                lam=1.3, seed=11)
    misses = _flowfn._compiled_loss.cache_info().misses
    W0 = numerics.random_init(p, 1e-2, 0)
    numerics.integrate(p, *W0, 1.0, ("pos", "neg"), path="full", n_points=3)
    assert _flowfn._compiled_loss.cache_info().misses == misses  # integration never compiles the loss
    ff = numerics.flow_function(p)
    # The lazily compiled loss is the one compiled from the same expression, and evaluates to the same bits.
    dims = dict(ff.loss_key[1])
    L = _flowfn._symbolic(ff.loss_key[0], "full", ("thin", "thin"))[2]
    fresh = compile_exprs({"loss": L}, dims, "loss", varying=_flowfn.STATE, symmetric=theory.symbols.SYMMETRIC)
    assert fresh.source == ff.loss_code.source
    assert float(fresh.bind(**values_for(p, fresh.constants))(*W0)[0]) == ff.loss(*W0)


@pytest.mark.parametrize("kw", [dict(path="full", n_points=41),
                                dict(path="auto", n_points=2, grad_tol=1e-6, dense_output=False)])
def test_integrate_with_the_lean_lsoda_driver_matches_solve_ivp(monkeypatch, kw):
    from scipy.integrate import solve_ivp

    from cdyn.numerics import _certify

    p = numerics.random_problem([3.0, 1.0, 0.4], [2.0, 0.9, 0.5], d_A=4, d_B=3, m=2, noise_A=0.1, noise_B=0.05,
                                lam=0.8, seed=5)
    W0 = numerics.random_init(p, 1e-3, 2)
    args = (p, *W0, 40.0, ("pos", "neg"))
    opts = dict(rtol=1e-10, atol=1e-14, method="LSODA", jac=False) | kw
    lean = numerics.integrate(*args, **opts)
    monkeypatch.setattr(_certify, "solve_lsoda", lambda *a, **k: solve_ivp(*a, **k))
    ref = numerics.integrate(*args, **opts)
    assert (lean.status, lean.message, lean.nfev, lean.t_stop) == (ref.status, ref.message, ref.nfev, ref.t_stop)
    assert np.array_equal(lean.t, ref.t)
    assert np.array_equal(lean.W_A, ref.W_A) and np.array_equal(lean.W_B, ref.W_B)


@pytest.mark.parametrize("path", ["full", "structured"])
def test_shared_chain_counts_cached_across_shapes_give_the_same_code(path):
    from cdyn.numerics import _compile

    def source(d_A: int, d_B: int, m: int) -> str:
        p = numerics.random_problem([3.0, 1.0, 0.5], [2.0, 1.0, 0.4], d_A=d_A, d_B=d_B, m=m, noise_A=0.05,
                                    noise_B=0.02, seed=1)
        key = (tuple(theory.get_term(n) for n in ("pos", "neg")),
               tuple(sorted(p.dims.items(), key=lambda kv: kv[0].name)), path,
               ("isotropic", "isotropic") if path == "structured" else ("thin", "thin"))
        return _flowfn._compiled_rhs.__wrapped__(*key).source

    source(7, 3, 2)  # fills the shape-free cache
    cached = [source(*dims) for dims in ((3, 9, 1), (12, 4, 3))]
    _compile._shared_chains.cache_clear()
    assert [source(*dims) for dims in ((3, 9, 1), (12, 4, 3))] == cached


def test_flow_functions_of_a_problem_share_one_binding_and_it_stays_out_of_pickles():
    import pickle

    p = numerics.random_problem([2.0, 1.0], [1.5, 0.7], d_A=4, d_B=3, m=2, noise_A=0.1, seed=3)
    W0 = numerics.random_init(p, 0.1, 1)
    first = numerics.flow_function(p)
    out = first(*W0)
    assert numerics.flow_function(p)._rhs is first._rhs  # bound once per problem
    other = numerics.flow_function(p, ("pos",))
    assert other._rhs is not first._rhs  # another flow, another binding
    q = pickle.loads(pickle.dumps(p))
    assert "_cdyn_flows" in p.__dict__ and "_cdyn_flows" not in q.__dict__
    again = numerics.flow_function(q)(*W0)
    assert all(np.array_equal(a, b) for a, b in zip(out, again))
