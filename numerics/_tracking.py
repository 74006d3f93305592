r"""How far a (stochastic) run is from a reference trajectory, in the quantities of THEORY §4.

$M = W_A C W_B^\top$, $\kappa$ and the population loss are invariant under the symmetry
$W_A \to G W_A$, $W_B \to G^{-\top} W_B$, along which SGD noise random-walks freely (no
restoring force: the loss is flat there). So the gaps are measured in those, never in $W$:

$$\Delta_M = \frac{\sup_t \|M(t) - M_{\mathrm{ref}}(t)\|_F}{\sup_t \|M_{\mathrm{ref}}(t)\|_F}, \qquad
  \Delta_\kappa = \sup_t \big|\log\kappa(t) - \log\kappa_{\mathrm{ref}}(t)\big|, \qquad
  \Delta_L = \sup_t |L(t) - L_{\mathrm{ref}}(t)| ,$$

over the run's snapshot times (up to its `t_stop`), with $\kappa$ capped at `resolvable_kappa`. The reference is read with
`Trajectory.at` (dense output for a flow; the exact iterate for GD on the same grid).
"""

from __future__ import annotations

import numpy as np

from ._flowfn import flow_function
from ._metrics import feature_covariance, kappa
from ._problem import Problem
from ._trajectory import Trajectory


def resolvable_kappa(m: int) -> float:
    r"""The largest $\kappa$ a float64 SVD of an $m\times m$ matrix resolves to 1%.

    Each computed $\sigma_i$ carries an absolute error of about $m\,\epsilon\,\sigma_1$, so
    $\sigma_k$ is known to 1% only while $\sigma_k \ge 100\,m\,\epsilon\,\sigma_1$. A run heading
    to divergence reaches $\kappa \sim 10^{17}$, where the digits are rounding noise.
    """
    return 1.0 / (100 * m * np.finfo(float).eps)


def tracking_gaps(p: Problem, run: Trajectory, ref: Trajectory, terms: object | None = None) -> dict[str, float]:
    r"""$(\Delta_M, \Delta_\kappa, \Delta_L)$ of `run` against `ref` (population loss of `terms`, default `ref.terms`)."""
    fn = flow_function(p, ref.terms if terms is None else terms)
    cap = resolvable_kappa(p.m)  # beyond it both κ are rounding noise; compare them as equal
    dM, nM, dk, dL = [], [], [], []
    for t, a, b in zip(run.t, run.W_A, run.W_B):
        if t > ref.t[-1] * (1 + 1e-12):
            break
        ra, rb = ref.at(float(t))
        M, Mr = feature_covariance(p, a, b), feature_covariance(p, ra, rb)
        dM.append(np.linalg.norm(M - Mr))
        nM.append(np.linalg.norm(Mr))
        dk.append(abs(np.log(min(kappa(p, a, b), cap)) - np.log(min(kappa(p, ra, rb), cap))))
        dL.append(abs(fn.loss(a, b) - fn.loss(ra, rb)))
    return {"M_rel": float(max(dM) / max(max(nM), np.finfo(float).tiny)), "log_kappa": float(max(dk)),
            "loss": float(max(dL))}


def rms(values: list[float]) -> tuple[float, float]:
    r"""Root mean square over runs and the standard error of its log (delta method).

    With $s = \overline{x^2}$ and $\mathrm{se}(s) = \mathrm{sd}(x^2)/\sqrt R$:
    $\mathrm{se}(\log\sqrt s) = \mathrm{se}(s)/(2s)$.
    """
    x2 = np.asarray(values, dtype=float) ** 2
    s = float(x2.mean())
    se = float(x2.std(ddof=1) / np.sqrt(x2.size)) if x2.size > 1 else float("inf")
    return float(np.sqrt(s)), se / (2 * s) if s > 0 else float("inf")
