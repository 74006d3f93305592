"""Bad input: every invalid field gives a ValueError/TypeError whose message names the field."""

from __future__ import annotations

import numpy as np
import pytest

from cdyn import numerics
from cdyn import theory

A = np.eye(3)[:, :2]
B = np.eye(4)[:, :2]


def ok(**kw):
    return numerics.Problem(**({"A": A, "B": B, "m": 2, "lam": 1.0} | kw))


@pytest.mark.parametrize(
    "kw, field, exc",
    [
        ({"A": np.ones(3)}, "A", ValueError),
        ({"A": "abc"}, "A", TypeError),
        ({"B": np.ones((4, 3))}, "B", ValueError),
        ({"A": np.array([[np.nan, 0], [0, 1], [0, 0]])}, "A", ValueError),
        ({"B": np.array([[np.inf, 0], [0, 1], [0, 0], [0, 0]])}, "B", ValueError),
        ({"A_xi": np.ones((2, 2))}, "A_xi", ValueError),
        ({"Sigma_z": np.array([[1.0, 0.5], [0.0, 1.0]])}, "Sigma_z", ValueError),
        ({"Sigma_z": np.array([[1.0, 0.0], [0.0, -1.0]])}, "Sigma_z", ValueError),
        ({"Sigma_z": np.eye(3)}, "Sigma_z", ValueError),
        ({"lam": -0.1}, "lam", ValueError),
        ({"lam": float("nan")}, "lam", ValueError),
        ({"lam": "1"}, "lam", TypeError),
        ({"mu": -1.0}, "mu", ValueError),
        ({"m": 0}, "m", ValueError),
        ({"m": 1.5}, "m", TypeError),
    ],
)
def test_problem_fields(kw, field, exc):
    with pytest.raises(exc, match=rf"^{field}\b"):
        ok(**kw)


def test_run_arguments_name_their_field():
    p = ok()
    W_A, W_B = np.zeros((2, 3)), np.zeros((2, 4))
    with pytest.raises(ValueError, match="^eta"):
        numerics.gradient_descent(p, W_A, W_B, eta=0.0, t_end=1.0)
    with pytest.raises(ValueError, match="^eta"):
        numerics.gradient_descent(p, W_A, W_B, eta=-1e-3, t_end=1.0)
    with pytest.raises(ValueError, match="^t_end"):
        numerics.integrate(p, W_A, W_B, t_end=-1.0)
    with pytest.raises(ValueError, match="^W_A0"):
        numerics.integrate(p, np.zeros((3, 3)), W_B, t_end=1.0)
    with pytest.raises(ValueError, match="^W_B0"):
        numerics.integrate(p, W_A, np.full((2, 4), np.nan), t_end=1.0)
    with pytest.raises(ValueError, match="^terms: unknown loss term 'nope'"):
        numerics.integrate(p, W_A, W_B, t_end=1.0, terms=("pos", "nope"))
    with pytest.raises(ValueError, match="^method"):
        numerics.integrate(p, W_A, W_B, t_end=1.0, method="Euler")
    with pytest.raises(ValueError, match="^terms"):
        theory.gradient_flow(("pos", "pos"))


def test_spectrum_validation():
    with pytest.raises(ValueError, match=r"^spectrum_A\[1\]"):
        numerics.random_problem([1.0, -2.0], [1.0, 1.0], d_A=3, d_B=3, m=2)
    with pytest.raises(ValueError, match="^spectrum_B"):
        numerics.random_problem([1.0, 2.0], [1.0], d_A=3, d_B=3, m=2)
    with pytest.raises(ValueError, match="^d_A"):
        numerics.random_problem([1.0, 2.0], [1.0, 1.0], d_A=1, d_B=3, m=2)


def test_diverging_flow_and_gd_report_status_and_time():
    """Positive pairs alone grow exponentially: the run stops with status and time, not NaN."""
    p = numerics.default_problem()
    W_A, W_B = numerics.random_init(p, 1e-2, 0)
    tr = numerics.integrate(p, W_A, W_B, 1e3, terms=("pos",), max_norm=1e4)
    assert tr.status == "diverged" and 0 < tr.t_stop < 1e3
    assert np.all(np.isfinite(tr.W_A)) and np.all(np.isfinite(tr.W_B))
    norm = np.sqrt(np.sum(tr.W_A[-1] ** 2) + np.sum(tr.W_B[-1] ** 2))
    assert np.isclose(norm, 1e4, rtol=1e-3)  # stopped at the event, not after
    gd = numerics.gradient_descent(p, W_A, W_B, eta=0.9, t_end=100.0)  # η far above 2/L
    assert gd.status == "diverged" and gd.t_stop < 100.0
    assert np.all(np.isfinite(gd.W_A))


def test_convergence_event_fires_at_the_fixed_point():
    p = numerics.default_problem()
    W_A, W_B = numerics.random_init(p, 1e-3, 0)
    tr = numerics.integrate(p, W_A, W_B, 500.0, grad_tol=1e-6)
    assert tr.status == "converged" and tr.t_stop < 500.0
    fn = numerics.flow_function(p)
    g = fn.grad_norm(tr.W_A[-1], tr.W_B[-1])
    scale = np.linalg.norm(p.C, 2) * (np.linalg.norm(tr.W_A[-1]) + np.linalg.norm(tr.W_B[-1]))
    assert g <= 1.01e-6 * scale


# -- issue 10: one validation layer -------------------------------------------------------------


@pytest.mark.parametrize("field, kw", [
    ("A", {"A": A + 0j}),
    ("A", {"A": [[1.0, 0.0], [0.0, 1j], [0.0, 0.0]]}),
    ("Sigma_z", {"Sigma_z": np.eye(2) * (1 + 0j)}),
    ("B_xi", {"B_xi": np.eye(4, dtype=complex)}),
])
def test_complex_input_is_refused_not_truncated(field, kw):
    with pytest.raises(TypeError, match=rf"^{field}: complex"):
        ok(**kw)


def test_complex_init_is_refused():
    p = ok()
    with pytest.raises(TypeError, match="^W_A0: complex"):
        numerics.integrate(p, np.zeros((2, 3), dtype=complex), np.zeros((2, 4)), t_end=1.0)


def test_psd_tolerance_is_relative_to_the_scale():
    with pytest.raises(ValueError, match="^Sigma_z: must be positive semi-definite"):
        ok(Sigma_z=np.diag([1e-12, -1e-13]))
    ok(Sigma_z=np.diag([1e-12, 1e-13]))  # tiny but PSD
    X = np.random.default_rng(0).standard_normal((2, 1)) * 1e-7
    ok(Sigma_z=X @ X.T)  # rank one: its zero eigenvalue comes out as ±rounding, which is accepted


def test_huge_entries_whose_moments_overflow_are_refused():
    with pytest.raises(ValueError, match=r"^A: entries too large.*Sigma_A"):
        ok(A=A * 1e300)
    p = ok(A=A * 1e140, B=B * 1e140)  # large but the moments (1e280) fit: accepted, and finite
    assert np.all(np.isfinite(p.C)) and np.isfinite(numerics.kappa_limit(p))
    with pytest.raises(ValueError, match=r"^spectrum_A\[0\]: 1e\+300 is too large"):
        numerics.random_problem([1e300, 1.0], [1.0, 1.0], d_A=3, d_B=3, m=1)
    with pytest.raises(ValueError, match=r"^noise_B: .*too large"):
        numerics.random_problem([1.0], [1.0], d_A=3, d_B=3, m=1, noise_B=1e200)


def test_empty_and_ill_typed_instances_are_refused():
    with pytest.raises(ValueError, match="^spectrum_A: must not be empty"):
        numerics.random_problem([], [], d_A=3, d_B=3, m=1)
    with pytest.raises(ValueError, match="^A: needs at least one row and one column"):
        numerics.Problem(A=np.zeros((3, 0)), B=np.zeros((4, 0)), m=1)
    with pytest.raises(TypeError, match="^shared_right: expected True or False"):
        numerics.random_problem([1.0], [1.0], d_A=3, d_B=3, m=1, shared_right="no")
    with pytest.raises(TypeError, match="^spectrum_A: expected a sequence"):
        numerics.random_problem("1.0", [1.0], d_A=3, d_B=3, m=1)


@pytest.mark.parametrize("kw, field, exc", [
    ({"rtol": -1.0}, "rtol", ValueError), ({"rtol": float("nan")}, "rtol", ValueError),
    ({"rtol": "x"}, "rtol", TypeError), ({"atol": float("nan")}, "atol", ValueError),
    ({"atol": -1e-12}, "atol", ValueError), ({"threads": 0}, "threads", ValueError),
    ({"threads": "abc"}, "threads", ValueError), ({"threads": True}, "threads", ValueError),
])
def test_solver_options_are_validated(kw, field, exc):
    p = ok()
    with pytest.raises(exc, match=rf"^{field}\b"):
        numerics.integrate(p, np.zeros((2, 3)), np.zeros((2, 4)), t_end=1.0, **kw)


def test_a_start_above_max_norm_is_diverged_at_t0():
    """The divergence event only sees sign changes, so the start is checked on its own (issue 10)."""
    p = numerics.default_problem()
    W_A, W_B = numerics.random_init(p, 1e6, 0)  # ‖W‖ ≈ 8e6 > max_norm = 1e6
    for tr in (numerics.integrate(p, W_A, W_B, 10.0, terms=("pos",)),
               numerics.integrate(p, W_A, W_B, 10.0),
               numerics.gradient_descent(p, W_A, W_B, 0.01, 10.0, terms=("pos",)),
               numerics.sgd(p, W_A, W_B, 0.01, 10.0, batch=8)):
        assert (tr.status, tr.t_stop, tr.nfev, len(tr.t)) == ("diverged", 0.0, 0, 1), tr.method
        assert np.array_equal(tr.W_A[0], W_A)
    # Just below the bound the run starts normally.
    tr = numerics.integrate(p, W_A * 0.9e6 / np.sqrt(np.sum(W_A**2) + np.sum(W_B**2)),
                            W_B * 0.9e6 / np.sqrt(np.sum(W_A**2) + np.sum(W_B**2)), 10.0, terms=("pos",))
    assert tr.status == "diverged" and 0 < tr.t_stop < 10.0


@pytest.mark.parametrize("content, what", [
    (None, "is a character device"),  # /dev/null
    ("fifo", "is a FIFO"),
    ("dir", "is a directory"),
    ("/proc/self/mem", "cannot read"),
    ("missing", "no such file"),
])
def test_config_paths_that_are_not_toml_files(tmp_path, capsys, content, what):
    import os

    from cdyn.cli import main

    path = {None: "/dev/null", "/proc/self/mem": "/proc/self/mem", "dir": str(tmp_path),
            "missing": str(tmp_path / "nope.toml"), "fifo": str(tmp_path / "f.toml")}[content]
    if content == "fifo":
        os.mkfifo(path)  # opening it for reading would block until a writer comes: it must not be opened
    assert main(["simulate", "--config", path, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: config: ") and what in err[0] and path in err[0], err


@pytest.mark.parametrize("name", ["lam", "mu", "Sigma_A", "sigma_A"])
def test_params_cannot_shadow_what_the_problem_sets(name):
    # Problem(params={"lam": 5}) used to change the compiled λ but not p.lam or kappa_limit.
    with pytest.raises(ValueError, match=rf"^params\.{name}: "):
        numerics.default_problem().replace(params={name: 5.0})
