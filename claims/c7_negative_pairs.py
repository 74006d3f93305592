r"""C7: negative pairs reduce $\kappa$ — their part of $d\log\kappa/dt$ is $\le 0$, the positive part $\ge 0$.

The split is computed two ways and compared: numerically from the state (singular
vectors of $M$ and each term's $\dot M$, `numerics.dlog_kappa`), and from the expression
`theory.closed_forms.dlog_kappa_split` derives for aligned modes,

$$\underbrace{g_1\Big(\tfrac{w_{A1}}{w_{B1}}+\tfrac{w_{B1}}{w_{A1}}\Big) - g_k\Big(\tfrac{w_{Ak}}{w_{Bk}}+\tfrac{w_{Bk}}{w_{Ak}}\Big)}_{\text{pos}}
 \;\underbrace{-\,\lambda\big(\alpha_1(w_{A1}^2+w_{B1}^2) - \alpha_k(w_{Ak}^2+w_{Bk}^2)\big)}_{\text{neg}},$$

where 1 and $k$ are the modes with the largest and smallest $q$. Balanced, the negative
part is $-2\lambda(\alpha_1X_1 - \alpha_kX_k) = -2\lambda(g_1q_1/\rho_1^2 - g_kq_k/\rho_k^2)$:
it is $\le 0$ exactly when $\kappa \ge (g_k/g_1)(\rho_1/\rho_k)^2$. Along the balanced
small-initialisation trajectory the modes stay ordered ($q$, $g$ and $\rho$ in the same
order) and $\kappa \ge \min(\kappa(0), \kappa_\infty) = \min(g_1/g_k, (\rho_1/\rho_k)^2)$,
which satisfies it because $\rho_1/\rho_k \le g_1/g_k$. So C7 is checked along those
trajectories ("after alignment, modes ordered").

C7-false drops the ordering: at an aligned balanced state whose modes have arbitrary
sizes, a weak mode can hold the largest $q$ and the negative part turns positive.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from cdyn import numerics

from ._claim import CheckResult, Claim
from ._common import build_decoupled, integrate_tight, log_w_error_bound, slack
from ._registry import register
from ._strategies import decoupled_spec, floats, spaced_desc

EPS = np.finfo(float).eps
HYPOTHESES = (
    "decoupled: A = U_A diag(a) Vᵀ, B = U_B diag(b) Vᵀ (shared V), Σ_z = I, isotropic noise σ ≤ 0.3·(weakest a, b), m = r",
    "a and b decrease together (modes ordered: g, ρ in the same order)",
    "states along the full-loss flow from a balanced common small initialisation X_0 = 10^(−e)·min X∞, e ∈ [3, 8] "
    "(aligned at all times; the modes keep their order)",
)


@st.composite
def _trajectories(draw: Any) -> dict[str, Any]:
    spec = draw(decoupled_spec())
    return {**spec, "init": {"log10_small": draw(floats(3.0, 8.0))}, "horizon": {"saturation": 1e-3}}


@st.composite
def _states(draw: Any) -> dict[str, Any]:
    spec = draw(decoupled_spec())
    r = len(spec["a"])
    # Distinct mode sizes q (so σ_1 and σ_k of M are simple), assigned to the modes in a drawn order.
    q = draw(spaced_desc(r, (1e-3, 1.0), (1.1, 4.0)))
    order = draw(st.permutations(range(r)))
    return {**spec, "init": {"q": [q[order[i]] for i in range(r)]}, "horizon": 0.0}


def _split_at(d: numerics.DecoupledInstance, W_A: np.ndarray, W_B: np.ndarray) -> dict[str, Any]:
    """Numeric and derived split at one aligned state, with the scales of each part."""
    p, lam = d.problem, d.problem.lam
    wa, wb = d.modes(W_A, W_B)
    q = np.abs(numerics.mode_q(d, wa, wb))
    i1, ik = int(np.argmax(q)), int(np.argmin(q))
    num = numerics.dlog_kappa(p, W_A, W_B, ("pos", "neg"))
    der = numerics.dlog_kappa_split_closed(d.g[i1], d.g[ik], d.alpha[i1], d.alpha[ik], lam,
                                           (wa[i1], wb[i1]), (wa[ik], wb[ik]))
    pos_scale = sum(d.g[i] * (abs(wa[i] / wb[i]) + abs(wb[i] / wa[i])) for i in (i1, ik))
    neg_scale = sum(lam * d.alpha[i] * (wa[i] ** 2 + wb[i] ** 2) for i in (i1, ik))
    return {"num": num, "derived": der, "pos_scale": pos_scale, "neg_scale": neg_scale, "kappa": q[i1] / q[ik],
            "largest_mode": i1, "smallest_mode": ik, "vector_error": _vector_error(p, W_A, W_B)}


def _vector_error(p: numerics.Problem, W_A: np.ndarray, W_B: np.ndarray) -> dict[str, float]:
    r"""Floating-point error of each term's numeric part from near-tied singular values.

    The SVD of $M$ is backward stable, $\|E\| \le c\,\epsilon\,\sigma_1$, so by Davis–Kahan
    the computed $u_i, v_i$ turn by $\sin\theta_i \le c\epsilon\sigma_1/\mathrm{gap}_i$ and
    $u_i^\top \dot M v_i/\sigma_i$ errs by at most $2\sin\theta_i\|\dot M\|/\sigma_i$. When two
    modes have nearly equal $q$ (e.g. all $\rho_i = 1$ without noise, near the limit) the
    split of $d\log\kappa/dt$ is ill-determined, and this bound says how much.
    """
    k = min(p.m, p.rank_C)
    s = np.linalg.svd(W_A @ p.C @ W_B.T, compute_uv=False)
    c = 16 * EPS * s[0]
    gap1 = s[0] - s[1] if s.size > 1 else np.inf
    gapk = min(s[k - 2] - s[k - 1] if k > 1 else np.inf, s[k - 1] - s[k] if s.size > k else np.inf)
    turn = [min(1.0, c / g) if g > 0 else 1.0 for g in (gap1, gapk)]  # sin θ ≤ 1 whatever the gap
    rel = 2 * (turn[0] / s[0] + turn[1] / s[k - 1])
    out = {}
    for name in ("pos", "neg"):
        dA, dB = numerics.flow_function(p, (name,))(W_A, W_B)
        out[name] = float(rel * np.linalg.norm(dA @ p.C @ W_B.T + W_A @ p.C @ dB.T, 2))
    return out


def _sign_margin(value: float, scale: float, tol: float) -> float:
    """(value + tol)/(scale + tol): ≥ 0 iff value ≥ −tol; 1 when value is its whole scale."""
    return (value + tol) / (scale + tol)


def check_c7(instance: dict[str, Any]) -> CheckResult:
    d = build_decoupled(instance)
    lam = d.problem.lam
    X0 = float(10.0 ** (-instance["init"]["log10_small"]) * numerics.carrying_capacity(d.g, d.alpha, lam).min())
    T = numerics.saturation_time(X0, d.g[-1], d.alpha[-1], lam, instance["horizon"]["saturation"])
    tr = integrate_tight(d.problem, *d.init(np.full(d.r, np.sqrt(X0)), np.full(d.r, np.sqrt(X0))), T,
                         ("pos", "neg"), n_points=121, dense_output=False)
    eps_w = log_w_error_bound(d, tr)
    worst = {"agree": np.inf, "neg_sign": np.inf, "pos_sign": np.inf}
    ordered = True
    where = {}
    for t, WA, WB in zip(tr.t, tr.W_A, tr.W_B):
        s = _split_at(d, WA, WB)
        ordered &= s["largest_mode"] == 0 and s["smallest_mode"] == d.r - 1
        fp = 64 * EPS * s["kappa"]
        tol_pos = (2 * eps_w + fp) * s["pos_scale"] + s["vector_error"]["pos"]
        tol_neg = (2 * eps_w + fp) * s["neg_scale"] + s["vector_error"]["neg"]
        m = {"agree": min(slack(abs(s["num"]["pos"] - s["derived"]["pos"]), tol_pos),
                          slack(abs(s["num"]["neg"] - s["derived"]["neg"]), tol_neg)),
             "neg_sign": _sign_margin(-s["num"]["neg"], s["neg_scale"], tol_neg),
             "pos_sign": _sign_margin(s["num"]["pos"], s["pos_scale"], tol_pos)}
        for k, v in m.items():
            if v < worst[k]:
                worst[k], where[k] = v, float(t)
    return CheckResult(min(worst.values()), {"margins": worst, "at_t": where, "T": T, "X0": X0,
                                             "modes_stay_ordered": bool(ordered), "solver_bound_log_w": eps_w})


def check_c7_false(instance: dict[str, Any]) -> CheckResult:
    d = build_decoupled(instance)
    lam = d.problem.lam
    # Balanced state with the drawn q_i = g_i X_i (q = g w_A w_B, derived): X_i = q_i / g_i.
    X = np.asarray(instance["init"]["q"]) / d.g
    W_A, W_B = d.init(np.sqrt(X), np.sqrt(X))
    s = _split_at(d, W_A, W_B)
    tol = 64 * EPS * s["kappa"] * s["neg_scale"]
    return CheckResult(_sign_margin(-s["num"]["neg"], s["neg_scale"], tol), {
        "neg_part": s["num"]["neg"], "pos_part": s["num"]["pos"], "derived": s["derived"], "X": X.tolist(),
        "lam_alpha_X": (lam * d.alpha * X).tolist(),
        "largest_q_mode": s["largest_mode"], "smallest_q_mode": s["smallest_mode"], "g": d.g.tolist()})


register(
    Claim(
        id="C7", title="negative pairs reduce κ: their part of d log κ/dt ≤ 0 (positive part ≥ 0)",
        statement="Along the full-loss flow of a decoupled instance from a balanced common small initialisation "
                  "(aligned, modes ordered), the negative-pair part of d log κ/dt is ≤ 0 and the positive-pair part "
                  "≥ 0; both equal the derived per-mode split.",
        latex=r"\frac{d\log\kappa}{dt} = \underbrace{2(g_1-g_k)}_{\ge 0} \underbrace{-\,2\lambda(\alpha_1X_1-\alpha_kX_k)}_{\le 0}",
        hypotheses=HYPOTHESES, strategy=_trajectories, check=check_c7, examples=8,
        margin_meaning="min over time of: sign margins (part ± tol)/(scale + tol), and 1 − |numeric − derived|/tol",
    ),
    Claim(
        id="C7-false", title="(mis-stated) negative pairs reduce κ at any aligned state, modes in any order",
        statement="At any aligned balanced state of a decoupled instance (mode sizes arbitrary), the negative-pair "
                  "part of d log κ/dt is ≤ 0.",
        latex=r"-2\lambda(\alpha_{i_1}X_{i_1}-\alpha_{i_k}X_{i_k}) \le 0 \text{ for any } X_i",
        hypotheses=HYPOTHESES[:2] + ("an aligned balanced state with distinct mode sizes q_i = g_i X_i (ratios ≥ 1.1) "
                                     "assigned to the modes in any order; horizon 0",),
        strategy=_states, check=check_c7_false, expected=False, examples=20,
        margin_meaning="(−neg part + tol)/(scale + tol), tol the floating-point error of the SVD formula",
    ),
)
