r"""Stage detection on a trajectory: the peak of $\kappa$, the two stage rates, the limit, balance.

Predictions (derived in `theory.closed_forms` for aligned modes, with $g_1 \ge g_k$ the top
and $k$-th singular values of $C$):

* stage 1, all modes exponential: $d\log\kappa/dt = 2(g_1 - g_k)$;
* stage 2, mode 1 saturated and mode $k$ still exponential: $d\log\kappa/dt = -2g_k$;
* the limit: $\kappa_\infty = (\rho_1/\rho_k)^2$ (THEORY §6).

The measured rates are least-squares slopes of $\log\kappa$ over the middle half (in
$\log\kappa$) of each stage, away from the turn-overs where neither regime holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from ._autochoice import signal_singular_values
from ._kappa_rate import dlog_kappa_total
from ._metrics import kappa, kappa_limit
from ._problem import Problem
from ._trajectory import Trajectory


@dataclass(frozen=True)
class Stages:
    """What a run's $\\kappa(t)$ did, next to what the theory predicts."""

    t_peak: float
    kappa_initial: float
    kappa_peak: float
    kappa_final: float
    kappa_limit: float
    stage1_rate: float
    stage1_predicted: float
    stage2_rate: float
    stage2_predicted: float
    t_balance: float | None
    balance_threshold: float

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


def _slope(t: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Slope of y(t) over the points whose y lies in the middle half of [lo, hi]."""
    a, b = min(lo, hi), max(lo, hi)
    keep = (y >= a + 0.25 * (b - a)) & (y <= a + 0.75 * (b - a))
    if keep.sum() < 3:
        return float("nan")
    return float(np.polyfit(t[keep], y[keep], 1)[0])


def refine_peak(p: Problem, traj: Trajectory, i: int, terms: tuple[str, ...]) -> float:
    """The root of $d\\log\\kappa/dt$ next to grid point i, on the solver's dense output."""
    if traj.dense is None or i == 0 or i >= len(traj.t) - 1:
        return float(traj.t[i])
    rate = lambda t: dlog_kappa_total(p, *traj.at(t), terms)  # noqa: E731
    lo, hi = float(traj.t[i - 1]), float(traj.t[i + 1])
    if rate(lo) <= 0 or rate(hi) >= 0:
        return float(traj.t[i])
    return float(brentq(rate, lo, hi, xtol=1e-13 * hi, rtol=4 * np.finfo(float).eps))


def kappa_peak(p: Problem, traj: Trajectory) -> tuple[float, float]:
    r"""Time and value of the largest $\kappa$ on $[0, t_{stop}]$, from the dense solution.

    The output grid can miss the peak entirely (with $t_{end} = 10^{300}$ its second point is
    far past it), so $\kappa$ is scanned on the grid *and* at the solver's own step times, which
    follow the dynamics; the best bracket is then refined by a bounded scalar search on the
    dense interpolant. Without dense output (GD, SGD, large states): the grid maximum."""
    if traj.dense is None:
        kap = np.array([kappa(p, a, b) for a, b in zip(traj.W_A, traj.W_B)])
        i = int(np.argmax(kap))
        return float(traj.t[i]), float(kap[i])
    ts = traj.t if traj.t_steps is None else np.union1d(traj.t, traj.t_steps[traj.t_steps <= traj.t_stop])
    logk = lambda t: float(np.log(kappa(p, *traj.at(float(t)))))  # noqa: E731
    vals = np.array([logk(t) for t in ts])
    i = int(np.argmax(vals))
    t_best, best = float(ts[i]), float(vals[i])
    if 0 < i < ts.size - 1:
        lo, hi = float(ts[i - 1]), float(ts[i + 1])
        res = minimize_scalar(lambda t: -logk(t), bounds=(lo, hi), method="bounded",
                              options={"xatol": 1e-12 * max(abs(hi), np.finfo(float).tiny)})
        if -res.fun > best:
            t_best, best = float(res.x), float(-res.fun)
    return t_best, float(np.exp(best))


def detect_stages(p: Problem, traj: Trajectory, terms: tuple[str, ...] | None = None) -> Stages:
    """Peak time (refined), stage rates (measured and predicted), final κ vs the CCA limit, balance time."""
    terms = tuple(terms or traj.terms)
    kap = np.array([kappa(p, a, b) for a, b in zip(traj.W_A, traj.W_B)])
    logk = np.log(kap)
    i = int(np.argmax(kap))
    t_peak = refine_peak(p, traj, i, terms)
    k = min(p.m, p.rank_C)
    g = signal_singular_values(p)  # of C, from its r×r core: no d_A×d_B SVD
    limit = kappa_limit(p)
    rate1 = _slope(traj.t[: i + 1], logk[: i + 1], logk[0], logk[i])
    rate2 = _slope(traj.t[i:], logk[i:], logk[i], np.log(limit))
    threshold = max(2.0, 1.1 * limit)
    after = np.nonzero((traj.t >= traj.t[i]) & (kap <= threshold))[0]
    t_bal = None
    if after.size:
        j = int(after[0])
        # Linear interpolation in log κ between the last point above and the first below.
        if j > 0 and kap[j - 1] > threshold:
            w = (np.log(threshold) - logk[j - 1]) / (logk[j] - logk[j - 1])
            t_bal = float(traj.t[j - 1] + w * (traj.t[j] - traj.t[j - 1]))
        else:
            t_bal = float(traj.t[j])
    return Stages(t_peak, float(kap[0]), float(kap[i]), float(kap[-1]), limit, rate1,
                  float(2 * (g[0] - g[k - 1])), rate2, float(-2 * g[k - 1]), t_bal, threshold)
