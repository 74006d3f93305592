r"""C9-wd: positive pairs with weight decay $\mu$ have no balance — they diverge or die, and $\kappa$
keeps the data's anisotropy, for every $\mu$.

Per mode (balanced, derived by `dsolve`): $X_i(t) = X_0 e^{2(g_i-\mu)t}$. So mode $i$ grows iff
$g_i > \mu$: for $\mu < g_{\max}$ the weights diverge (all modes if $\mu < g_{\min}$, only
the strong ones if $g_{\min} < \mu < g_{\max}$, while the weak ones die), for
$\mu > g_{\max}$ everything decays to $0$. In every case $\mu$ cancels from
$\kappa(t) = \kappa(0)e^{2(g_{\max}-g_{\min})t}$ with $\kappa(0) = g_{\max}/g_{\min} = \kappa(C)$: $\kappa$
starts at the data's condition number and grows from it — never balanced.

The check places $\mu$ strictly inside one of the $r + 1$ intervals cut by the $g_i$
(geometric interpolation, so never on a boundary where the horizon would be infinite),
predicts the status (diverged / completed) and the divergence time from the closed form
($\|W\|_F^2 = 2\sum_i X_i(t)$ reaches `max_norm`), and compares $\kappa(t)$ with the law.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from scipy.optimize import brentq

from cdyn import numerics

from ._claim import CheckResult, Claim
from ._common import build_decoupled, integrate_tight, kappa_series, log_w_error_bound, slack
from ._registry import register
from ._strategies import decoupled_spec, floats

MAX_NORM = 1e6
#: κ is compared with the law while κ ≤ this: beyond, σ_k(M) is below the SVD's resolution ε·σ_1.
KAPPA_RESOLVED = 1e8
EPS = float(np.finfo(float).eps)


@st.composite
def _instances(draw: Any) -> dict[str, Any]:
    spec = draw(decoupled_spec())
    r = len(spec["a"])
    return {**spec, "init": {"w0": draw(floats(1e-3, 0.1))},
            "horizon": {"mu_interval": draw(st.integers(0, r)), "mu_position": draw(floats(0.1, 0.9))}}


def _mu(g: np.ndarray, j: int, f: float) -> float:
    """μ inside the j-th interval of (g_1·2, g_1, …, g_r, g_r/4), at geometric fraction f."""
    cuts = np.concatenate([[2 * g[0]], g, [g[-1] / 4]])
    hi, lo = cuts[j], cuts[j + 1]
    return float(np.exp((1 - f) * np.log(hi) + f * np.log(lo)))


def check_c9_wd(instance: dict[str, Any]) -> CheckResult:
    spec = instance
    d0 = build_decoupled(spec)
    mu = _mu(d0.g, spec["horizon"]["mu_interval"], spec["horizon"]["mu_position"])
    d = build_decoupled(spec, mu=mu)
    w0 = spec["init"]["w0"]
    X0 = w0**2
    norm = lambda t: float(np.sqrt(2 * numerics.positive_only_X(t, X0, d.g, mu).sum()))  # noqa: E731
    diverges = mu < d.g.max()
    if diverges:
        hi = 1.0
        while norm(hi) < MAX_NORM:
            hi *= 2
        t_div = float(brentq(lambda t: norm(t) - MAX_NORM, 0.0, hi, xtol=1e-13 * hi))
        T = 1.5 * t_div
    else:
        t_div = None
        T = float(np.log(1e3) / (2 * (mu - d.g.min())))  # the weakest mode's X falls by 1e3
    tr = integrate_tight(d.problem, *d.init(np.full(d.r, w0), np.full(d.r, w0)), T, ("pos", "wd"),
                         n_points=201, max_norm=MAX_NORM, dense_output=False)
    law = numerics.kappa_law(tr.t, d.g.max(), d.g.min())
    win = law <= KAPPA_RESOLVED
    eps_w = log_w_error_bound(d, _window(tr, win))
    logk = np.log(kappa_series(d.problem, tr))
    err = float(np.abs(logk[win] - np.log(law[win])).max())
    tol_k = 4 * eps_w + 4 * EPS * float(law[win].max())
    margins = {"kappa_law": slack(err, tol_k),
               "status": 1.0 if (tr.status == "diverged") == diverges else -1.0}
    if diverges and tr.status == "diverged":
        # The event time errs by the state's relative error over the growth rate of log‖W‖.
        rate = float(np.sum((d.g - mu) * numerics.positive_only_X(t_div, X0, d.g, mu))
                     / numerics.positive_only_X(t_div, X0, d.g, mu).sum())
        margins["divergence_time"] = slack(abs(tr.t_stop - t_div), 2 * eps_w / rate + 1e-9 * t_div)
    if not diverges:
        margins["decays"] = 1.0 if np.linalg.norm(tr.W_A[-1]) < np.linalg.norm(tr.W_A[0]) else -1.0
    growing = [int(i) for i in np.nonzero(d.g > mu)[0]]
    return CheckResult(min(margins.values()), {
        "mu": mu, "g": d.g.tolist(), "regime": _regime(len(growing), d.r), "growing_modes": growing,
        "status": tr.status, "predicted_divergence_time": t_div, "t_stop": tr.t_stop, "margins": margins,
        "kappa_0": float(np.exp(logk[0])), "kappa_end": float(np.exp(logk[-1])), "kappa_C": float(d.g[0] / d.g[-1]),
        "min_kappa_over_kappa_0": float(np.exp(logk.min() - logk[0])), "max_log_kappa_error": err})


def _regime(n_growing: int, r: int) -> str:
    return {0: "all modes decay (μ > g_max)", r: "all modes diverge (μ < g_min)"}.get(
        n_growing, "strong modes diverge, weak ones die (g_min < μ < g_max)")


def _window(tr: numerics.Trajectory, keep: np.ndarray) -> numerics.Trajectory:
    """The part of a trajectory where κ is resolved (the error bound is computed there)."""
    from dataclasses import replace

    return replace(tr, t=tr.t[keep], W_A=tr.W_A[keep], W_B=tr.W_B[keep])


def _summary(details: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [d for d in details if "regime" in d]
    by = {}
    for d in ok:
        by.setdefault(d["regime"], []).append(d)
    return {"regimes": {k: {"examples": len(v), "statuses": sorted({x["status"] for x in v}),
                            "mu_over_g_max": [min(x["mu"] / max(x["g"]) for x in v), max(x["mu"] / max(x["g"]) for x in v)],
                            "min_kappa_over_kappa_0": min(x["min_kappa_over_kappa_0"] for x in v)}
                        for k, v in sorted(by.items())}}


register(Claim(
    id="C9-wd", title="positive pairs + weight decay μ: diverge iff μ < g_max, κ = κ(C)e^{2(g_max−g_min)t} for every μ",
    statement="With positive pairs and weight decay μ on a decoupled instance (balanced common init), mode i grows "
              "iff g_i > μ: the weights diverge for μ < g_max (at the closed-form time) and decay to 0 for μ > g_max; "
              "in every case κ(t) = κ(C)·e^{2(g_max−g_min)t} ≥ κ(C), so training never balances.",
    latex=r"X_i(t) = X_0 e^{2(g_i-\mu)t},\qquad \kappa(t) = \frac{g_{\max}}{g_{\min}} e^{2(g_{\max}-g_{\min})t}"
          r"\quad\forall\mu",
    hypotheses=("decoupled: shared V, Σ_z = I, isotropic noise, m = r; a, b decreasing together",
                "balanced common initialisation w_0 ∈ [1e-3, 0.1]; terms = pos, wd",
                "μ strictly inside one of the r + 1 intervals cut by g_1 > … > g_r (or above 2g_1 / below g_r/4)",
                "horizon: 1.5 × the predicted divergence time, or until the weakest mode's X fell by 1e3"),
    strategy=_instances, check=check_c9_wd, examples=10,
    margin_meaning="min of: 1 − κ error/solver bound, 1 − divergence-time error/bound, ±1 for the predicted status",
    summarize=_summary,
))
