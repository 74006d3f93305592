"""Closed forms (theory/_closed_forms.py): THEORY's forms, independent numeric oracles, derivations fresh."""

from __future__ import annotations

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

from cdyn import numerics
from cdyn import theory
from cdyn.theory import closed_forms as CF
from cdyn.theory import decoupled as D

t, g, lam, X0, mu = D.t, D.g, theory.symbols.lam, CF.X0, theory.symbols.mu


def test_logistic_is_theory_section_5_when_noiseless():
    X = CF.logistic_solution()
    theory_form = X0 * sp.exp(2 * g * t) / (1 + lam * g * X0 * (sp.exp(2 * g * t) - 1))
    assert sp.simplify(X.subs(CF.alpha, g**2) - theory_form) == 0
    assert sp.simplify(CF.carrying_capacity() - g / (CF.alpha * lam)) == 0


def test_positive_only_and_the_kappa_law():
    assert sp.simplify(CF.positive_only_solution() - X0 * sp.exp(2 * (g - mu) * t)) == 0
    k0, ratio = CF.kappa_growth_law()
    s1, sk = CF.mode_symbols("1"), CF.mode_symbols("k")
    assert sp.simplify(k0 - s1["g"] / sk["g"]) == 0
    assert sp.simplify(ratio - sp.exp(2 * (s1["g"] - sk["g"]) * t)) == 0
    assert mu not in ratio.free_symbols


def test_split_of_dlog_kappa():
    s1, sk = CF.mode_symbols("1"), CF.mode_symbols("k")
    split = CF.dlog_kappa_split(("pos", "neg"), balanced=True)
    assert sp.simplify(split["pos"] - 2 * (s1["g"] - sk["g"])) == 0
    assert sp.simplify(split["neg"] + 2 * lam * (s1["alpha"] * s1["X"] - sk["alpha"] * sk["X"])) == 0


def test_logistic_against_solve_ivp_of_the_matrix_flow_mode():
    """Independent oracle: integrate the *derived per-mode ODE* with solve_ivp at tight tolerance."""
    f = numerics.mode_rhs(("pos", "neg"))
    a, b, sA, sB, lam_v = 1.3, 0.8, 0.2, 0.1, 0.7
    w0 = 1e-3
    sol = solve_ivp(lambda _t, y: np.array(f(y[0], y[1], a, b, sA, sB, lam_v, 0.0)), (0, 20), [w0, w0],
                    rtol=1e-12, atol=1e-15, dense_output=True)
    d = numerics.decoupled_instance([a], [b], sigma_A=sA, sigma_B=sB)
    ts = np.linspace(0, 20, 50)
    X = numerics.logistic_X(ts, w0**2, d.g[0], d.alpha[0], lam_v)
    np.testing.assert_allclose(sol.sol(ts)[0] ** 2, X, rtol=1e-8)


def test_peak_prediction_against_brute_force_roots():
    g1, gk, a1, ak, lam_v, x0 = 2.0, 0.6, 4.5, 0.5, 1.2, 1e-7
    pred = numerics.peak_prediction(g1, gk, a1, ak, lam_v, x0)
    X = lambda t_, gg, al: float(numerics.logistic_X(t_, x0, gg, al, lam_v))  # noqa: E731
    # Exact root of d log κ/dt = 2(g1-gk) - 2λ(α1 X1 - αk Xk), found here without theory's expression.
    rate = lambda t_, eps=1.0: 2 * (g1 - gk) - 2 * lam_v * (a1 * X(t_, g1, a1) - eps * ak * X(t_, gk, ak))  # noqa: E731
    t_star = brentq(rate, 0.1, 15, xtol=1e-14)
    assert abs(pred.t_exact - t_star) < 1e-9
    assert abs(pred.t_hat - brentq(lambda t_: rate(t_, 0.0), 0.1, 15, xtol=1e-14)) < 1e-9
    # The first-order correction accounts for nearly all of t* − t̂ when the weak mode is small.
    assert abs((t_star - pred.t_hat) / pred.first_order - 1) < 0.05
    assert np.isclose(pred.stage1_rate, 2 * (g1 - gk), rtol=1e-14) and np.isclose(pred.stage2_rate, -2 * gk, rtol=1e-14)


def test_cca_fixed_point_and_balance_bound():
    c = CF.cca_fixed_point()
    assert sp.simplify(lam * c.q - D.mode_rho() ** 2) == 0
    assert sp.simplify(c.inv_rho2 - (1 + D.sigma_A**2 / D.a**2) * (1 + D.sigma_B**2 / D.b**2)) == 0
    # Numerically: the limit of a general instance obeys the bound (non-shared bases).
    p = numerics.random_problem([30.0, 4.0, 1.0], [100.0, 2.0, 1.0], d_A=3, d_B=3, m=3, noise_A=0.05,
                                noise_B=0.08, seed=5)
    bound = (1 + 0.05**2) * (1 + 0.08**2)
    assert 1.0 < numerics.kappa_limit(p) <= bound


def test_derivations_are_fresh(monkeypatch):
    from pathlib import Path

    from cdyn import theory
    from cdyn.cli import main

    # --check renders theory/ twice (to compare, then to count the files); a pure function: render once.
    rendered = theory.render_derivations()
    monkeypatch.setattr(theory, "render_derivations", lambda: dict(rendered))
    root = Path(__file__).resolve().parents[1]
    assert main(["derive", "--check", "--out", str(root / "derivations")]) == 0
    text = (root / "derivations" / "README.md").read_text(encoding="utf-8")
    for title in ("decoupled model", "Closed forms", "equilibrium is CCA"):
        assert title in text
