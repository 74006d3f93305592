"""Bad input: every invalid field gives a ValueError/TypeError whose message names the field."""

from __future__ import annotations

import numpy as np
import pytest

import numerics
import theory

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
