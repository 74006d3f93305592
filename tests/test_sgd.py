"""`numerics.sgd`: the update rule, the time axis, statuses, reproducibility, bad input.

The statistical claims (unbiasedness, √(η/n) tracking, CLIP's two stages) are C10/C11 in
`tests/test_claims_c10_c11.py`; here every check is exact or deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest

from cdyn import numerics
from cdyn.numerics._clip import clip_loss_and_grad
from cdyn.numerics._sampling import sample_pairs
from cdyn.numerics._sgd import MAX_INVERSE_TEMPERATURE, _sampler


@pytest.fixture(scope="module")
def setup():
    p = numerics.random_problem([1.5, 0.6], [1.2, 0.5], d_A=3, d_B=4, m=2, noise_A=0.2, noise_B=0.1, seed=1)
    return p, *numerics.random_init(p, 0.3, 2)


@pytest.mark.parametrize("loss", ["spectral", "pos-only", "clip"])
def test_same_seed_same_numbers(setup, loss):
    p, W_A, W_B = setup
    kw = dict(steps=30, batch=8, loss=loss, seed=5, n_points=7)
    a, b = numerics.sgd(p, W_A, W_B, 0.05, **kw), numerics.sgd(p, W_A, W_B, 0.05, **kw)
    assert np.array_equal(a.W_A, b.W_A) and np.array_equal(a.batch_loss, b.batch_loss)
    assert a.summary() == b.summary()
    c = numerics.sgd(p, W_A, W_B, 0.05, **(kw | {"seed": 6}))
    assert not np.array_equal(a.W_A[-1], c.W_A[-1])
    assert isinstance(a, numerics.Trajectory) and a.status == "completed"
    assert np.allclose(a.t, np.arange(0, 31, 5) * 0.05) and a.nfev == 30


def test_full_batch_on_a_fixed_data_set_is_gradient_descent_on_its_moments(setup):
    """Exact: with batch = n_data every step sees the whole data set (in some order), and the
    V-statistic of the negatives is the population loss of the empirical distribution, i.e. of
    the data model with A = X_Aᵀ/√n, B = X_Bᵀ/√n, Σ_z = I_n and no noise."""
    p, W_A, W_B = setup
    n, eta, steps = 12, 0.05, 40
    run = numerics.sgd(p, W_A, W_B, eta, steps=steps, batch=n, n_data=n, negatives="v", seed=0, n_points=9)
    XA, XB = sample_pairs(p.A, p.B, p.A_xi, p.B_xi, None, n, np.random.default_rng(0))  # the run's data set
    emp = numerics.Problem(A=XA.T / np.sqrt(n), B=XB.T / np.sqrt(n), m=p.m, lam=p.lam)
    gd = numerics.gradient_descent(emp, W_A, W_B, eta, steps * eta, n_points=9)
    assert np.allclose(run.t, gd.t)
    # Only the summation order differs (rows are reshuffled every epoch): rounding level.
    assert np.allclose(run.W_A, gd.W_A, rtol=1e-10, atol=1e-12)
    assert np.allclose(run.W_B, gd.W_B, rtol=1e-10, atol=1e-12)


def test_epochs_visit_every_pair_once(setup):
    p = setup[0]
    draw = _sampler(p, 4, 12, np.random.default_rng(3), "gaussian")
    full = sample_pairs(p.A, p.B, p.A_xi, p.B_xi, None, 12, np.random.default_rng(3))[0]
    epoch = np.concatenate([draw()[0] for _ in range(3)])
    assert sorted(map(tuple, epoch)) == sorted(map(tuple, full))
    # n_data = 14 with batch 4: the incomplete tail (2 pairs) is dropped each epoch.
    run = numerics.sgd(p, *numerics.random_init(p, 0.3, 0), 0.01, epochs=2, batch=4, n_data=14)
    assert run.nfev == 6


@pytest.mark.parametrize("loss", ["spectral", "pos-only", "clip"])
def test_weight_decay_adds_exactly_mu_W(setup, loss):
    """Same seed, same batch: one step with and without μ differs by exactly −η μ W₀."""
    p, W_A, W_B = setup
    kw = dict(steps=1, batch=8, loss=loss, seed=1, n_points=2)
    a = numerics.sgd(p, W_A, W_B, 0.1, **kw)
    b = numerics.sgd(p, W_A, W_B, 0.1, weight_decay=0.3, **kw)
    assert np.allclose(b.W_A[-1] - a.W_A[-1], -0.1 * 0.3 * W_A, atol=1e-14)
    assert np.allclose(b.W_B[-1] - a.W_B[-1], -0.1 * 0.3 * W_B, atol=1e-14)
    assert "wd" in b.terms


def test_one_clip_step_is_minus_eta_times_the_clip_gradient(setup):
    p, W_A, W_B = setup
    run = numerics.sgd(p, W_A, W_B, 0.1, steps=1, batch=8, loss="clip", temperature=0.5, seed=4, n_points=2)
    draw = _sampler(p, 8, None, np.random.default_rng(4), "gaussian")
    XA, XB = draw()
    loss, gA, gB, _ = clip_loss_and_grad(W_A, W_B, XA, XB, 2.0)
    assert np.allclose(run.W_A[-1], W_A - 0.1 * gA, atol=1e-14)
    assert np.allclose(run.W_B[-1], W_B - 0.1 * gB, atol=1e-14)
    assert run.batch_loss[0] == pytest.approx(loss, rel=1e-14)


def test_learned_temperature_moves_and_is_clamped(setup):
    p, W_A, W_B = setup
    run = numerics.sgd(p, 5 * W_A, 5 * W_B, 0.5, steps=200, batch=16, loss="clip", learn_tau=True,
                       temperature=0.02, normalize=True, n_points=11)
    assert run.temperature[0] == 0.02 and run.temperature.min() >= 1 / MAX_INVERSE_TEMPERATURE - 1e-15
    assert not np.allclose(run.temperature, 0.02)
    fixed = numerics.sgd(p, W_A, W_B, 0.1, steps=10, batch=16, loss="clip", temperature=0.3, n_points=3)
    assert np.all(fixed.temperature == 0.3)


@pytest.mark.parametrize("loss", ["spectral", "pos-only", "clip"])
def test_divergence_is_a_status_with_its_time_never_nan(setup, loss):
    p, W_A, W_B = setup
    run = numerics.sgd(p, 30 * W_A, 30 * W_B, 5.0, steps=500, batch=8, loss=loss, n_points=11)
    assert run.status == "diverged"
    k = round(run.t_stop / 5.0)
    assert 1 <= k < 500 and run.nfev == k and run.t_stop == pytest.approx(k * 5.0)
    assert np.all(np.isfinite(run.W_A)) and np.all(np.isfinite(run.W_B))
    assert run.t[-1] <= run.t_stop


@pytest.mark.parametrize("kw,field", [
    ({"eta": 0.0}, "eta"), ({"eta": -1.0}, "eta"), ({"batch": 1}, "batch"), ({"loss": "infonce"}, "loss"),
    ({"steps": None}, "t_end, steps, epochs"), ({"t_end": 1.0}, "t_end, steps, epochs"),
    ({"steps": None, "epochs": 2}, "epochs"), ({"n_data": 4}, "n_data"), ({"temperature": 0.0}, "temperature"),
    ({"weight_decay": -0.1}, "weight_decay"), ({"z_dist": "cauchy"}, "z_dist"), ({"negatives": "w"}, "negatives"),
    ({"seed": -1}, "seed"), ({"max_norm": 0.0}, "max_norm"),
])
def test_bad_input_names_the_field(setup, kw, field):
    p, W_A, W_B = setup
    args = dict(eta=0.1, steps=5, batch=8) | kw
    with pytest.raises(ValueError, match=field):
        numerics.sgd(p, W_A, W_B, **args)


def test_wrong_types_are_type_errors(setup):
    p, W_A, W_B = setup
    with pytest.raises(TypeError, match="problem"):
        numerics.sgd("p", W_A, W_B, 0.1, steps=2)
    with pytest.raises(TypeError, match="batch"):
        numerics.sgd(p, W_A, W_B, 0.1, steps=2, batch=8.0)
    with pytest.raises(ValueError, match="W_A0"):
        numerics.sgd(p, W_A[:1], W_B, 0.1, steps=2)
