r"""C9-thin-false: "with small noise the full loss never ends worse conditioned than it starts" — thin.

THEORY §6 and C9: the limit of the full flow is CCA, $\kappa_\infty = (\rho_{\max}/\rho_{\min})^2$,
close to 1 when the noise is small, whatever the anisotropy. The mis-statement turns "close
to 1" into "never above the start": from a balanced common initialisation, where
$\kappa(0) = g_{\max}/g_{\min}$, it claims $\kappa_\infty \le \kappa(0)$ whenever the noise is at
most a tenth of the weakest signal. With $\nu_A = \sigma_A/\min a$, $\nu_B = \sigma_B/\min b$,

$$\rho_i^2 = \Big[\big(1+\sigma_A^2/a_i^2\big)\big(1+\sigma_B^2/b_i^2\big)\Big]^{-1},\qquad
\log\kappa_\infty = O(\nu_A^2 + \nu_B^2) \le 0.02,$$

so it fails exactly where $\log(g_{\max}/g_{\min}) < \log\kappa_\infty$: where a strong direction
of A is paired with a weak one of B closely enough that the paired strengths nearly coincide
($a_1b_1 \approx a_2b_2$) while the noise still separates the canonical correlations. That is
a wedge around the surface $a_1b_1 = a_2b_2$, inside the box, whose width vanishes with the
noise (`benchmarks/thin_claims.py` estimates its volume: under 1%).

Both sides are measured from the run: $\kappa(0)$ on the initial weights, $\kappa_\infty$ at the
end of a run to equilibrium (as `_limits.limit_run`), with the Newton estimate of its
distance to the true limit as tolerance. Margin: $\log\kappa(0) - \log\kappa(T) + \text{tol}$.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cdyn import numerics

from ._claim import CheckResult, Claim
from ._common import build_decoupled
from ._limits import newton_tolerance, reference_floor
from ._registry import register
from ._space import Param, Space

INIT = 0.1  # X0 = INIT · min X∞ (below every capacity); the limit does not depend on it
#: Newton distance of the end state to the equilibrium (the margins that matter are ≥ 1e-4 in log κ)
TARGET = 1e-9


def _build(p: dict[str, float]) -> dict[str, Any]:
    a, b = [p["a1"], p["a2"]], [p["b1"], p["b2"]]
    return {"a": a, "b": b, "sigma_A": p["nu_A"] * min(a), "sigma_B": p["nu_B"] * min(b),
            "extra_d_A": 0, "extra_d_B": 0, "lam": 1.0, "seed": 0,
            "init": {"X0_over_min_capacity": INIT}, "horizon": {"newton_distance": TARGET}}


SPACE = Space(
    (Param("a1", 1.0, 2.4), Param("a2", 0.35, 0.8), Param("b1", 0.3, 0.75), Param("b2", 0.9, 2.2),
     Param("nu_A", 0.0, 0.1), Param("nu_B", 0.0, 0.1)),
    build=_build,
)


def check(instance: dict[str, Any]) -> CheckResult:
    d = build_decoupled(instance)
    p = d.problem
    X0 = float(instance["init"]["X0_over_min_capacity"] * numerics.carrying_capacity(d.g, d.alpha, p.lam).min())
    W_A0, W_B0 = d.init(np.full(d.r, np.sqrt(X0)), np.full(d.r, np.sqrt(X0)))
    # Chunks of the weakest mode's escape time, as `_limits.limit_run`, on the full path (d = 2) with no
    # per-call BLAS thread switching (the engine already runs on one thread): this check runs tens of times.
    t_chunk = float(np.log(1.0 / X0) / (2 * d.g.min()))
    W_A, W_B, ed, t_end, nfev = numerics.integrate_to_equilibrium(
        p, W_A0, W_B0, ("pos", "neg"), t_chunk=t_chunk, target=instance["horizon"]["newton_distance"], rtol=1e-8,
        atol=1e-14, method="LSODA", jac=False, path="full", threads=None,
        dense_output=False)
    log_kappa = lambda a, b: float(np.log(numerics.kappa(p, a, b)))  # noqa: E731
    k0, kT = log_kappa(W_A0, W_B0), log_kappa(W_A, W_B)
    tol = float(newton_tolerance(log_kappa, W_A, W_B, ed)) + reference_floor(p)
    return CheckResult(k0 - kT + tol, {
        "g": d.g.tolist(), "rho": d.rho.tolist(), "kappa_0": float(np.exp(k0)), "kappa_end": float(np.exp(kT)),
        "kappa_limit_cca": numerics.kappa_limit(p), "t_end": t_end, "nfev": nfev, "tolerance": tol})


register(Claim(
    id="C9-thin-false", title="(mis-stated) with small noise the full loss never ends worse conditioned than it starts",
    statement="With the full loss on a decoupled two-mode instance with noise at most 0.1 × the weakest signal of "
              "each view, from a balanced common small initialisation, the limit κ is at most κ(0).",
    latex=r"\sigma_A \le 0.1\min_i a_i,\ \sigma_B \le 0.1\min_i b_i \;\Rightarrow\; "
          r"\kappa_\infty = (\rho_{\max}/\rho_{\min})^2 \le \kappa(0) = g_{\max}/g_{\min}",
    hypotheses=("decoupled, two modes, d = r = 2, Σ_z = I, isotropic noise σ_A = ν_A·min a, σ_B = ν_B·min b, "
                "ν_A, ν_B ∈ [0, 0.1]; λ = 1; full loss (terms = pos, neg)",
                "a1 ∈ [1, 2.4], a2 ∈ [0.35, 0.8], b1 ∈ [0.3, 0.75], b2 ∈ [0.9, 2.2] (B's strong mode paired with "
                "A's weak one)",
                "balanced common initialisation X0 = 0.1 · min X∞; run to equilibrium (Newton distance ≤ 1e-9)"),
    strategy=SPACE.strategy, check=check, expected=False, examples=20, space=SPACE,
    margin_meaning="log κ(0) − log κ(end) + Newton tolerance (nats)",
))
