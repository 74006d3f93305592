"""`integrate(..., backend="numba")` against the reference, SciPy's `solve_ivp` DOP853.

The numba backend is SciPy's DOP853 step for step (`numerics/_rk_kernels.py`), so on the same
path the two runs take the same steps and differ by rounding. The bound below comes from the
tolerances: each step of either run may commit a local error up to `rtol·|y| + atol`, so a
departure of one run's steps from the other's (a different accept/reject decision) shows as at
most twice the sum over the steps, `2·steps·(rtol·max|W| + atol)`; rounding alone stays far below.
Accuracy against a tight-tolerance SciPy reference must match SciPy's own at the same tolerances
(the global error itself is not bounded by the local tolerances: it grows through the saddle escape).
"""

from __future__ import annotations

import numpy as np
import pytest

from cdyn import numerics

pytest.importorskip("numba")
# One xdist worker runs them all: numba compiles the DOP853 loop and each right-hand side once per
# process, so two workers would each pay the same cold compile (about a minute of CPU on a new clone).
pytestmark = pytest.mark.xdist_group("numba")

RTOL, ATOL = 1e-10, 1e-14


def _problem(noise: float = 0.1):
    return numerics.random_problem((1.0, 0.6, 0.35), (0.9, 0.55, 0.4), d_A=6, d_B=5, m=2, noise_A=noise,
                                   noise_B=noise, seed=3)


def _bound(run, rtol: float = RTOL, atol: float = ATOL) -> float:
    scale = max(float(np.abs(np.asarray(run.W_A)).max()), float(np.abs(np.asarray(run.W_B)).max()))
    return 2.0 * len(run.t_steps) * (rtol * scale + atol)


def _pair(p, W, **kw):
    ref = numerics.integrate(p, *W, method="DOP853", rtol=RTOL, atol=ATOL, **kw)
    new = numerics.integrate(p, *W, method="DOP853", rtol=RTOL, atol=ATOL, backend="numba", **kw)
    return ref, new


def _close(ref, new) -> None:
    assert new.status == ref.status, (ref.message, new.message)
    assert new.path == ref.path and new.method == ref.method + "/numba"
    assert new.t.shape == ref.t.shape
    bound = _bound(ref)
    n = min(len(ref.t), len(new.t))
    assert np.abs(new.t[:n] - ref.t[:n]).max(initial=0.0) <= bound
    for a, b in ((ref.W_A, new.W_A), (ref.W_B, new.W_B)):
        assert np.abs(np.asarray(a)[:n] - np.asarray(b)[:n]).max() <= bound


@pytest.mark.parametrize("path", ["full", "structured", "reduced"])
def test_same_solution_as_scipy(path):
    p = _problem()
    W = numerics.random_init(p, 1e-2, seed=1)
    ref, new = _pair(p, W, t_end=60.0, path=path)
    _close(ref, new)
    assert ref.status == "completed"
    # Same algorithm, same controller: the same number of evaluations and the same steps.
    assert new.nfev == ref.nfev
    assert len(new.t_steps) == len(ref.t_steps)
    # Dense output between the grid points.
    for t in np.linspace(0.0, 60.0, 17)[1:-1] + 0.123:
        (a, b), (c, e) = ref.at(t), new.at(t)
        assert max(np.abs(a - c).max(), np.abs(b - e).max()) <= _bound(ref)


def test_accuracy_matches_scipy_at_the_same_tolerances():
    p = _problem()
    W = numerics.random_init(p, 1e-2, seed=2)
    tight = numerics.integrate(p, *W, 40.0, method="DOP853", rtol=1e-13, atol=1e-16, path="full")
    errs = {}
    for backend in ("scipy", "numba"):
        run = numerics.integrate(p, *W, 40.0, method="DOP853", rtol=1e-7, atol=1e-10, backend=backend, path="full")
        errs[backend] = max(np.abs(np.asarray(run.W_A) - np.asarray(tight.W_A)).max(),
                            np.abs(np.asarray(run.W_B) - np.asarray(tight.W_B)).max())
    assert 0 < errs["scipy"] < 1e-3  # the comparison means something: a real, small error
    assert errs["numba"] <= 2 * errs["scipy"] + 100 * np.finfo(float).eps


def test_divergence_event():
    p = _problem()
    W = numerics.random_init(p, 1e-2, seed=1)
    ref, new = _pair(p, W, t_end=200.0, terms=("pos",), max_norm=1e3)
    assert ref.status == "diverged" and new.message == ref.message
    assert abs(new.t_stop - ref.t_stop) <= 1e-6 * ref.t_stop
    _close(ref, new)


def test_certified_convergence():
    p = numerics.default_problem()
    W = numerics.random_init(p, 1e-3)
    ref, new = _pair(p, W, t_end=200.0, grad_tol=1e-6, path="full")
    assert ref.status == new.status == "converged"
    assert new.message.split(",")[0].split(" at ")[0] == "converged"
    assert "certified" in new.message
    # The event's root: where the relative gradient crosses grad_tol; W there agrees to the bound.
    a, b = ref.at(ref.t_stop), new.at(new.t_stop)
    assert max(np.abs(a[0] - b[0]).max(), np.abs(a[1] - b[1]).max()) <= _bound(ref)
    # Hundreds of steps: the dense output spans several of the compiled loop's stores (64, 128, ... steps).
    assert len(new.t_steps) > 64 + 128
    for t in np.linspace(0.0, ref.t_stop, 23)[1:-1] + 0.01:
        (a, b), (c, e) = ref.at(t), new.at(t)
        assert max(np.abs(a - c).max(), np.abs(b - e).max()) <= _bound(ref)


def test_auto_path_when_compiled():
    from cdyn.numerics._integrate import build_system

    p = numerics.random_problem((1.0, 0.6, 0.3) * 2 + (0.2, 0.1), (0.9, 0.5, 0.35) * 2 + (0.2, 0.1), d_A=64, d_B=64,
                                m=8, noise_A=0.1, noise_B=0.1, seed=1)
    W = numerics.random_init(p, 1e-3)
    # NumPy pays per call (the full form's 12 products win); compiled code pays per flop (the reduced form wins).
    assert build_system(p, ("pos", "neg"), *W, "auto").path == "full"
    assert build_system(p, ("pos", "neg"), *W, "auto", compiled=True).path == "reduced"


def test_evaluation_budget():
    p = _problem()
    W = numerics.random_init(p, 1e-2, seed=1)
    with numerics.budget(max_nfev=300):
        ref = numerics.integrate(p, *W, 400.0, method="DOP853")
        new = numerics.integrate(p, *W, 400.0, method="DOP853", backend="numba")
    assert ref.status == new.status == "failed"
    assert new.message.split(" at t=")[0] == ref.message.split(" at t=")[0] == \
        "stopped after 300 right-hand-side evaluations"


def test_auto_on_a_stiff_instance_runs_scipy():
    a = (1.0, 0.1, 0.01)
    p = numerics.random_problem(a, a, d_A=4, d_B=4, m=3, noise_A=0.0, noise_B=0.0, seed=0)
    assert numerics.data_condition(p) >= 30
    run = numerics.integrate(p, *numerics.random_init(p, 1e-2), 1.0, backend="numba")
    assert run.method == "LSODA+jac"  # auto picked an implicit method: SciPy ran it, and says so


@pytest.mark.parametrize("kw, field", [({"backend": "jax"}, "backend"), ({"backend": 3}, "backend"),
                                       ({"backend": "numba", "method": "LSODA"}, "backend")])
def test_bad_backend(kw, field):
    p = _problem()
    with pytest.raises(ValueError, match=f"^{field}: "):
        numerics.integrate(p, *numerics.random_init(p, 1e-2), 1.0, **kw)


def test_generated_module_is_cached_on_disk(tmp_path, monkeypatch):
    from cdyn.numerics import _rk_numba

    monkeypatch.setenv("CDYN_CACHE_DIR", str(tmp_path))
    p = _problem()
    W = numerics.random_init(p, 1e-2, seed=1)
    numerics.integrate(p, *W, 1.0, method="DOP853", backend="numba", path="reduced")
    files = list(tmp_path.glob("cdyn_rk_*.py"))
    assert len(files) == 1 and "def rhs(y, out, consts, shp):" in files[0].read_text()
    assert _rk_numba.cache_dir() == tmp_path
