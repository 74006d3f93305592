"""Resource budgets are checked from the sizes before anything is allocated or run (issue 10), the
shortest horizons do not hang a solver, and peaks come from the dense solution, not the grid."""

from __future__ import annotations

import signal
from contextlib import contextmanager

import numpy as np
import pytest

from cdyn import numerics
from cdyn.cli import main


@contextmanager
def deadline(seconds: float):
    """Fail instead of hanging (the solvers call back into Python, where the alarm is raised).

    A guard against hangs (the fuzz's were hours: 10¹³ steps, LSODA stuck at t_end = 1e-300),
    not a timing test: the refusals take milliseconds, but a loaded 2-core machine can stall
    a process for seconds, so the guards are generous."""
    def boom(*_a):
        raise TimeoutError(f"did not return within {seconds} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def small():
    p = numerics.random_problem([1.0, 0.5], [1.0, 0.6], d_A=4, d_B=4, m=2)
    return p, numerics.random_init(p, 1e-2, 0)


def test_api_refuses_oversized_runs_naming_the_argument(small):
    p, W = small
    cases = [
        (lambda: numerics.gradient_descent(p, *W, eta=1e-12, t_end=10.0), r"^eta: .* 1e\+13 steps"),
        (lambda: numerics.gradient_descent(p, *W, eta=1e-300, t_end=10.0), r"^eta: .* 1e\+301 steps"),
        (lambda: numerics.sgd(p, *W, 0.02, steps=10**12), r"^steps: .* 1e\+12 steps"),
        (lambda: numerics.sgd(p, *W, 0.02, t_end=1e300), r"^eta: .*steps, above the limit"),
        (lambda: numerics.sgd(p, *W, 0.02, steps=3, batch=10**9, path="full"), r"^batch: .*EiB of memory"),
        # the structured form holds no n×n logits: m×n features and a chunk of factors
        (lambda: numerics.sgd(p, *W, 0.02, steps=3, batch=10**9, path="structured"), r"^batch: .*GiB of memory"),
        (lambda: numerics.sgd(p, *W, 0.02, steps=3, n_data=10**12), r"^n_data: .*TiB of memory"),
        (lambda: numerics.integrate(p, *W, 1.0, n_points=10**9), r"^n_points: .*GiB of memory"),
        # (isotropic noise is kept as σ, not as a d×d matrix: the d×r factors are what is charged)
        (lambda: numerics.random_problem([1.0], [1.0], d_A=10**12, d_B=3, m=1, noise_A=0.1), r"^d_A: .*14.6 TiB"),
        (lambda: numerics.random_init(p.replace(m=10**9)), r"^m: .*GiB of memory"),
        # A thin d×r instance is cheap, but its dense moments (C is d_A×d_B) are not.
        (lambda: numerics.random_problem([1.0], [1.0], d_A=10**5, d_B=10**5, m=1).C, r"^d_A: .*moments"),
    ]
    with deadline(60.0):
        for call, message in cases:
            with pytest.raises(ValueError, match=message):
                call()


def test_budget_can_be_raised_and_is_restored():
    with pytest.raises(ValueError, match="^eta"):
        numerics.gd_steps(10.0, 1e-12)
    with numerics.budget(max_steps=1e14):
        assert numerics.gd_steps(10.0, 1e-12) == 10**13
    with pytest.raises(ValueError, match="^eta"):
        numerics.gd_steps(10.0, 1e-12)
    with numerics.budget(max_memory=1e3), pytest.raises(ValueError, match="^d_A: .*1000 B"):
        numerics.random_problem([1.0], [1.0], d_A=100, d_B=3, m=1)
    with pytest.raises(ValueError, match="^max_memory"):
        numerics.parse_bytes("lots")
    assert numerics.parse_bytes("8G") == 8 * 2**30


def test_a_horizon_too_short_to_move_returns_w0_at_once(small):
    """LSODA did not return from t_end = 1e-300; the state cannot change in float64 there."""
    p, W = small
    with deadline(60.0):
        for method in ("LSODA", "auto", "RK45"):
            tr = numerics.integrate(p, *W, 1e-300, method=method)
            assert tr.status == "completed" and np.array_equal(tr.W_A[-1], W[0]) and np.array_equal(tr.W_B[-1], W[1])
    # A short horizon that does move W still goes through the solver.
    tr = numerics.integrate(p, *W, 1e-6, method="LSODA")
    assert tr.nfev > 0 and not np.array_equal(tr.W_A[-1], W[0])


@pytest.mark.parametrize("toml, argv, field", [
    ("[problem]\nd_A = 1000000\n", ["simulate"], "d_A: this simulation would need about"),
    ("[problem]\nm = 1000000000\n", ["simulate"], "m: this simulation would need about"),
    ("[run]\nn_points = 1000000000\n", ["simulate"], "n_points: this simulation"),
    # The fuzz's 118973 samples: 5 minutes of metrics after a 1 s integration, before this check.
    ("[run]\nn_points = 118973\n", ["simulate"], "n_points: measuring κ, the loss and the gradient at 118973 "
                                                   "samples × 2 run(s) costs about 2.38e+06"),
    ("[run]\nn_points = 118973\n", ["simulate", "--no-gd"], "samples × 1 run(s) costs about 1.19e+06"),
    ("[run]\nn_points = 401\n", ["simulate", "--no-gd", "--max-steps", "4000"], "n_points: measuring"),
    ("[run]\neta = 1e-300\n", ["simulate"], "eta: t_end/eta = 200/1e-300 is 2e+302 steps"),
    ("[init]\nscale = 1e300\n", ["simulate"], "scale: the initial weights have norm inf"),
    ("", ["simulate", "--max-steps", "10"], "eta: t_end/eta = 200/0.01 is 2e+04 steps, above the limit of 10"),
    ("", ["simulate", "--max-memory", "1K"], "above the limit of 1 KiB"),
    ("", ["simulate", "--max-memory", "lots"], "max_memory: expected a size"),
    ("[train]\nbatch = 1000000000\n", ["train"], "batch: this training run"),
    ("[train]\nn_data = 1000000000000\n", ["train"], "n_data: this training run"),
    ("[train]\nt_end = 1e300\n", ["train"], "eta: t_end/eta = 1e+300/0.02"),
    ("[train]\nsteps = 1000000000000\n", ["train"], "steps: the run is 1e+12 steps"),
])
def test_cli_refuses_before_allocating(tmp_path, capsys, monkeypatch, toml, argv, field):
    def no_work(*_a, **_k):
        raise AssertionError("work started before the budget check")

    for name in ("integrate", "gradient_descent", "sgd"):
        monkeypatch.setattr(numerics, name, no_work)
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    with deadline(60.0):
        assert main([*argv, "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and field in err[0], err
    assert not (tmp_path / "o").exists()


def test_peak_comes_from_the_dense_solution_even_when_the_grid_skips_it():
    """t_end = 1e300: the output grid's second point is past convergence, so its maximum is κ(0)."""
    p = numerics.default_problem()
    W = numerics.random_init(p, 1e-3, 0)
    far = numerics.integrate(p, *W, 1e300, grad_tol=1e-6)
    assert far.status == "converged" and len(far.t) == 2  # the grid holds t = 0 and the stop only
    t_far, k_far = numerics.kappa_peak(p, far)
    # Reference: a tight solve on a fine grid over the first 8 time units, refined the same way.
    ref = numerics.integrate(p, *W, 8.0, n_points=801, rtol=1e-11, atol=1e-15)
    grid = np.array([numerics.kappa(p, a, b) for a, b in zip(ref.W_A, ref.W_B)])
    t_ref, k_ref = numerics.kappa_peak(p, ref)
    assert k_ref >= grid.max()  # the bounded search only improves on the grid
    # rtol 1e-8 against 1e-11: κ to ~1e-8 relative; t* sits on a flat maximum, so to ~sqrt of that.
    assert abs(k_far / k_ref - 1) < 1e-6 and abs(t_far - t_ref) < 1e-3 * t_ref
    assert 3.0 < t_far < 5.0 and k_far > 1e4 * numerics.kappa(p, *W)


def test_solver_runs_that_cannot_progress_end_failed_with_the_reason():
    """λ = 1e308 stalled inside LSODA; a huge init on the equilibrium manifold crawled for minutes."""
    p = numerics.default_problem()
    with deadline(30.0):
        tr = numerics.integrate(p.replace(lam=1e308), *numerics.random_init(p), 200.0)
        assert tr.status == "failed" and "no progress at t=0" in tr.message and tr.nfev <= 20_001
        with numerics.budget(max_nfev=2000):
            tr = numerics.integrate(p, *numerics.random_init(p, 1e5), 200.0)
        assert tr.status == "failed" and "2e+03 right-hand-side evaluations" in tr.message
        assert tr.nfev == 2001 and tr.t[0] == 0.0 and 0.0 < tr.t_stop < 200.0
    # Moments that fit in float64 (1e280) but a flow that does not (Σ_B W Σ_A ~ 1e560): failed at once.
    q = numerics.Problem(A=np.eye(3)[:, :2] * 1e140, B=np.eye(4)[:, :2] * 1e140, m=2)
    tr = numerics.integrate(q, *numerics.random_init(q, 1.0, 0), 1.0)
    assert tr.status == "failed" and "overflowed float64" in tr.message and tr.nfev == 1


def _settled_step(message: str) -> float:
    return float(message.split("settled near h = ")[1].split(" ")[0])


def test_a_horizon_out_of_reach_fails_after_a_few_hundred_steps():
    """`cdyn train` with eta = 1e300 integrates the flow to t = 1e300 (no stopping test): DOP853 sat at its stability
    limit for 10⁴ steps (150,590 evaluations, 12-23 s) before the no-progress rule gave up. The step sizes now
    project the evaluations t_end needs, and the run ends as soon as that is beyond 100× the budget."""
    p = numerics.default_problem()
    with deadline(30.0):
        tr = numerics.integrate(p, *numerics.random_init(p, 1e-3, 0), 1e300, n_points=21)
    assert tr.status == "failed" and tr.message.startswith("t_end = 1e+300 is out of reach")
    assert tr.nfev < 30_000 and 0.0 < tr.t_stop < 1e4
    # With a convergence test the same horizon is fine: the run ends converged (the peak test above).


def test_a_huge_init_is_stiff_and_fails_at_once_with_the_reason():
    """An init of scale 1e5 with the full loss crawled to the evaluation limit. Diagnosis: the quartic `neg` term
    makes the fastest rate of the flow grow like ‖W‖², so an explicit method's stable step shrinks like 1/scale²:
    the settled step sizes at scales 1e4 and 1e5 differ by 100 (to within the jitter of the step control)."""
    p = numerics.default_problem()
    steps = {}
    with deadline(60.0):
        for scale in (1e4, 1e5):
            tr = numerics.integrate(p, *numerics.random_init(p, scale, 0), 200.0)
            assert tr.status == "failed" and "t_end = 200 is out of reach" in tr.message and "stiff" in tr.message
            assert tr.nfev < 30_000 and tr.t_stop < 1e-3
            steps[scale] = _settled_step(tr.message)
    assert 50 < steps[1e4] / steps[1e5] < 200
    # With grad_tol the projection is to the data's time scale (1e4/g_k), not to t_end: still out of reach.
    tr = numerics.integrate(p, *numerics.random_init(p, 1e5, 0), 1e300, grad_tol=1e-6)
    assert tr.status == "failed" and "(the data's time scale) is out of reach" in tr.message and tr.nfev < 30_000


def test_train_with_a_huge_step_ends_quickly(tmp_path, capsys):
    import json

    cfg = tmp_path / "c.toml"
    cfg.write_text("[train]\neta = 1e300\n")
    with deadline(60.0):
        assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["runs"][0]["status"] == "diverged" and summary["runs"][0]["nfev"] == 1
    assert summary["flow"]["status"] == "failed" and "out of reach" in summary["flow"]["message"]
    assert summary["flow"]["nfev"] < 30_000
