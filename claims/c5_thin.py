r"""C5-thin-false: "anisotropic views make positive-only $\kappa$ grow" — false on a thin band.

THEORY §5: without negative pairs $\kappa(t) = \kappa(0)\,e^{2(g_{\max}-g_{\min})t}$, a growth
"at a rate set by the data's anisotropy". The mis-statement reads *anisotropy of the data*
as anisotropy of each view: if $\kappa(A) = a_1/a_2$ and $\kappa(B)$ are both $\ge 1.2$, then by
the time the strongest mode has grown $G = 10^6$-fold ($T = \log G/(2g_{\max})$), $\kappa$ has
grown by at least $F = 5\%$. The rate is set by the *paired* strengths $g_i = a_ib_i$, and a
strong direction of A may be paired with a weak one of B. Then

$$\log\frac{\kappa(T)}{\kappa(0)} = 2(g_{\max}-g_{\min})T = \Big(1-\frac{g_{\min}}{g_{\max}}\Big)\log G < \log F
\iff \frac{g_{\min}}{g_{\max}} > 1 - \frac{\log F}{\log G} \approx 0.99647,$$

a band $|\log(g_1/g_2)| < 0.00353$ around the surface $a_1b_1 = a_2b_2$, inside the box (not on
its boundary). `benchmarks/thin_claims.py` estimates its volume by Monte Carlo (under 1%).
The margin is measured on the matrix flow (two modes, $d = 2$), not taken from the formula:
$(\Delta\log\kappa + \text{tol} - \log F)/\log F$ with tol the solver bound of `_common`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._claim import CheckResult, Claim
from ._common import build_decoupled, integrate_tight, kappa_series, log_w_error_bound
from ._registry import register
from ._space import Param, Space

GROWTH = 1e6
FACTOR = 1.05

SPACE = Space(
    (Param("a1", 1.0, 2.4), Param("a2", 0.35, 0.8), Param("b1", 0.3, 0.75), Param("b2", 0.9, 2.2),
     Param("w0", 1e-3, 0.05, log=True)),
    build=lambda p: {"a": [p["a1"], p["a2"]], "b": [p["b1"], p["b2"]], "sigma_A": 0.0, "sigma_B": 0.0,
                     "extra_d_A": 0, "extra_d_B": 0, "lam": 1.0, "seed": 0,
                     "init": {"w0": p["w0"]}, "horizon": {"growth": GROWTH}},
)


def check(instance: dict[str, Any]) -> CheckResult:
    d = build_decoupled(instance)
    w0 = float(instance["init"]["w0"])
    T = float(np.log(instance["horizon"]["growth"]) / (2 * d.g.max()))
    tr = integrate_tight(d.problem, *d.init(np.full(d.r, w0), np.full(d.r, w0)), T, ("pos",), n_points=21,
                         path="full", threads=None, dense_output=False)
    if tr.status != "completed":
        return CheckResult(float("nan"), {"reason": f"integration {tr.status} at t = {tr.t_stop:.4g} < T = {T:.4g}"})
    logk = np.log(kappa_series(d.problem, tr))
    tol = 4 * log_w_error_bound(d, tr)
    growth = float(logk[-1] - logk[0])
    return CheckResult((growth + tol - np.log(FACTOR)) / np.log(FACTOR), {
        "g": d.g.tolist(), "kappa_A": float(d.a.max() / d.a.min()), "kappa_B": float(d.b.max() / d.b.min()),
        "T": T, "kappa_0": float(np.exp(logk[0])), "kappa_T": float(np.exp(logk[-1])),
        "log_kappa_growth": growth, "tolerance": tol})


register(Claim(
    id="C5-thin-false", title="(mis-stated) anisotropic views make positive-only κ grow ≥ 5%",
    statement=f"With positive pairs only, on a decoupled two-mode instance whose views are each anisotropic "
              f"(κ(A), κ(B) ≥ 1.2), from a balanced common initialisation, κ grows by at least {FACTOR - 1:.0%} "
              f"by the time the strongest mode has grown {GROWTH:.0e}-fold.",
    latex=r"\kappa(A),\kappa(B)\ge 1.2 \;\Rightarrow\; \kappa(T)\ge 1.05\,\kappa(0),\quad T=\frac{\log 10^6}{2g_{\max}}",
    hypotheses=("decoupled, two modes, d = r = 2, Σ_z = I, no noise, λ irrelevant (terms = pos)",
                "a = (a1, a2), a1 ∈ [1, 2.4], a2 ∈ [0.35, 0.8]; b = (b1, b2), b1 ∈ [0.3, 0.75], b2 ∈ [0.9, 2.2]: "
                "each view anisotropic (ratio ≥ 1.25 for A, ≥ 1.2 for B), B's strong mode paired with A's weak one",
                "aligned, balanced, common initialisation w0 ∈ [1e-3, 0.05] (log-uniform)",
                "horizon: the strongest mode grows 1e6-fold"),
    strategy=SPACE.strategy, check=check, expected=False, examples=20, space=SPACE,
    margin_meaning="(growth of log κ over the horizon + solver bound − log 1.05) / log 1.05",
))
