r"""The closed forms of `theory.closed_forms`, compiled to NumPy, and the peak-time prediction.

Nothing is re-typed: every function here is `lambdify` of an expression that `dsolve` /
`solve` produced and `theory` checked against its ODE.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import sympy as sp
from scipy.optimize import brentq

from cdyn import theory

cf = theory.closed_forms


@lru_cache(maxsize=1)
def _logistic() -> Callable[..., np.ndarray]:
    return sp.lambdify((theory.decoupled.t, cf.X0, theory.decoupled.g, cf.alpha, theory.symbols.lam),
                       cf.logistic_solution(), "numpy")


def logistic_X(t: np.ndarray | float, X0: float, g: np.ndarray | float, alpha: np.ndarray | float,
               lam: float) -> np.ndarray:
    r"""$X(t)$ of a balanced mode under the full loss (THEORY §5), noise allowed through $\alpha$."""
    return np.asarray(_logistic()(np.asarray(t, dtype=float), X0, g, alpha, lam), dtype=float)


@lru_cache(maxsize=1)
def _positive_only() -> Callable[..., np.ndarray]:
    return sp.lambdify((theory.decoupled.t, cf.X0, theory.decoupled.g, theory.symbols.mu),
                       cf.positive_only_solution(), "numpy")


def positive_only_X(t: np.ndarray | float, X0: float, g: np.ndarray | float, mu: float = 0.0) -> np.ndarray:
    r"""$X(t) = X_0 e^{2(g-\mu)t}$ of a balanced mode under positive pairs (+ weight decay)."""
    return np.asarray(_positive_only()(np.asarray(t, dtype=float), X0, g, mu), dtype=float)


@lru_cache(maxsize=1)
def _kappa_law() -> Callable[..., np.ndarray]:
    k0, ratio = cf.kappa_growth_law()
    s1, sk = cf.mode_symbols("1"), cf.mode_symbols("k")
    return sp.lambdify((theory.decoupled.t, s1["g"], sk["g"]), k0 * ratio, "numpy")


def kappa_law(t: np.ndarray | float, g_max: float, g_min: float) -> np.ndarray:
    r"""$\kappa(t) = \kappa(0)e^{2(g_{max}-g_{min})t}$, $\kappa(0) = g_{max}/g_{min}$ (positive pairs, common $X_0$)."""
    return np.asarray(_kappa_law()(np.asarray(t, dtype=float), g_max, g_min), dtype=float)


@dataclass(frozen=True)
class PeakPrediction:
    """Stage boundary of a decoupled balanced run, from the closed forms."""

    #: Leading-order $\hat t^*$ (strongest mode saturating, weakest still exponential).
    t_hat: float
    #: First-order size of what $\hat t^*$ neglects: $\varepsilon\,\partial t^*/\partial\varepsilon$.
    first_order: float
    #: The exact root of $d\log\kappa/dt$ on the two logistic modes (brentq).
    t_exact: float
    #: $|d^2\log\kappa/dt^2|$ at the exact root (turns a rate error into a time error).
    curvature: float
    stage1_rate: float
    stage2_rate: float


@lru_cache(maxsize=1)
def _peak_fns() -> dict[str, Callable[..., float]]:
    pk = cf.peak_time()
    s1, sk = cf.mode_symbols("1"), cf.mode_symbols("k")
    args = (s1["g"], sk["g"], s1["alpha"], sk["alpha"], theory.symbols.lam, cf.X0)
    targs = (theory.decoupled.t, *args)
    return {
        "t_hat": sp.lambdify(args, pk.leading, "math"),
        "sens": sp.lambdify(args, pk.sensitivity, "math"),
        "eps": sp.lambdify(args, pk.epsilon, "math"),
        "rate": sp.lambdify(targs, pk.rate, "math"),
        "drate": sp.lambdify(targs, sp.diff(pk.rate, theory.decoupled.t), "math"),
        "stage1": sp.lambdify(args, pk.stage1_rate, "math"),
        "stage2": sp.lambdify(args, pk.stage2_rate, "math"),
    }


def dlog_kappa_closed(t: float, g1: float, gk: float, alpha1: float, alphak: float, lam: float, X0: float) -> float:
    r"""$d\log\kappa/dt$ at time $t$ of the balanced two-mode closed form (modes 1 and k)."""
    return float(_peak_fns()["rate"](t, g1, gk, alpha1, alphak, lam, X0))


def peak_prediction(g1: float, gk: float, alpha1: float, alphak: float, lam: float, X0: float) -> PeakPrediction:
    """Predict the peak time of $\\kappa$ for balanced modes 1 (strongest) and k (weakest), common $X_0$."""
    f = _peak_fns()
    args = (g1, gk, alpha1, alphak, lam, X0)
    t_hat = float(f["t_hat"](*args))
    first = float(f["sens"](*args) * f["eps"](*args))
    rate = lambda t: f["rate"](t, *args)  # noqa: E731
    hi = max(t_hat, 1.0 / g1)
    # The rate is positive at 0 (small X_0) and negative once mode 1 saturates: widen until bracketed.
    while rate(hi) > 0:
        hi *= 2.0
    t_exact = float(brentq(rate, 0.0, hi, xtol=1e-14 * hi, rtol=4 * np.finfo(float).eps, maxiter=500))
    return PeakPrediction(t_hat, first, t_exact, abs(float(f["drate"](t_exact, *args))),
                          float(f["stage1"](*args)), float(f["stage2"](*args)))


@lru_cache(maxsize=1)
def _capacity() -> Callable[..., float]:
    return sp.lambdify((theory.decoupled.g, cf.alpha, theory.symbols.lam), cf.carrying_capacity(), "numpy")


def carrying_capacity(g: np.ndarray | float, alpha: np.ndarray | float, lam: float) -> np.ndarray:
    r"""$X_\infty = \lim_{t\to\infty} X(t)$ of a logistic mode."""
    return np.asarray(_capacity()(g, alpha, lam), dtype=float)


def saturation_time(X0: float, g: float, alpha: float, lam: float, delta: float) -> float:
    r"""First $t$ with $X(t) \ge (1-\delta) X_\infty$ for a logistic mode (inverted numerically)."""
    X_inf = float(carrying_capacity(g, alpha, lam))
    target = (1 - delta) * X_inf
    if X0 >= target:
        return 0.0
    hi = 1.0 / g
    while logistic_X(hi, X0, g, alpha, lam) < target:
        hi *= 2.0
    return float(brentq(lambda t: float(logistic_X(t, X0, g, alpha, lam)) - target, 0.0, hi, xtol=1e-12 * hi))


@lru_cache(maxsize=1)
def _split_fns() -> dict[str, Callable[..., float]]:
    split = cf.dlog_kappa_split(("pos", "neg"), balanced=False)
    s1, sk = cf.mode_symbols("1"), cf.mode_symbols("k")
    w = [sp.Symbol(n, positive=True) for n in ("w_{A1}", "w_{B1}", "w_{Ak}", "w_{Bk}")]
    args = (s1["g"], sk["g"], s1["alpha"], sk["alpha"], theory.symbols.lam, *w)
    for name, expr in split.items():
        if expr.free_symbols - set(args):
            raise ArithmeticError(f"split part {name} has unexpected symbols {expr.free_symbols - set(args)}")
    return {name: sp.lambdify(args, expr, "math") for name, expr in split.items()}


def dlog_kappa_split_closed(g1: float, gk: float, alpha1: float, alphak: float, lam: float,
                            w1: tuple[float, float], wk: tuple[float, float]) -> dict[str, float]:
    r"""The derived split of $d\log\kappa/dt$ (modes 1 = largest $q$, k = smallest), term by term.

    Amplitudes enter through $w_A/w_B$ ratios and squares, so their signs do not matter."""
    vals = (abs(w1[0]), abs(w1[1]), abs(wk[0]), abs(wk[1]))
    return {name: float(f(g1, gk, alpha1, alphak, lam, *vals)) for name, f in _split_fns().items()}
