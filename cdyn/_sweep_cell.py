r"""One sweep cell: integrate the flow of a config (and train beside it when asked) and reduce the run
to scalar outcomes, each next to the theory's prediction where THEORY §5–§7 makes one.

| outcome | how |
|---|---|
| `status`, `t_status`, `reason` | the flow's `Trajectory.status`, `t_stop`, `message` (`error` when the cell raised) |
| `t_peak`, `kappa_peak` | `numerics.kappa_peak`: from the dense solution, not the output grid |
| `t_peak_pred` | $\hat t^*$ of `numerics.peak_prediction` (balanced decoupled init, full loss) |
| `kappa_final`, `eig_ratio`, `kappa_limit` | $\kappa$ and $|\lambda_1/\lambda_k|$ of $M$ at `t_stop`; $(\rho_1/\rho_k)^2$ |
| `rate1`, `rate2` (+ `_pred`) | `numerics.detect_stages`: slopes of $\log\kappa$; $2(g_1-g_k)$, $-2g_k$ |
| `train_gap` | $\sup_t\|M_{run}-M_{flow}\|_F/\sup_t\|M_{flow}\|_F$ of GD or SGD/CLIP (`numerics.tracking_gaps`) |
| `wall` | seconds for the cell |
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from cdyn import numerics
from cdyn.numerics._flowfn import normalize_terms
from cdyn.numerics._validate import as_real

from ._common import problem_from_config

FLOAT_VARS = ("t_status", "t_peak", "kappa_peak", "t_peak_pred", "kappa_final", "kappa_limit", "eig_ratio",
              "rate1", "rate1_pred", "rate2", "rate2_pred", "train_gap", "wall")
NAN = float("nan")


def decoupled_bases(cfg: dict[str, Any], p: numerics.Problem) -> numerics.DecoupledInstance:
    r"""The bases of a `shared_right` instance: $A = U_A\,\mathrm{diag}(a)V^\top$, $B = U_B\,\mathrm{diag}(b)V^\top$.

    They are drawn again from the instance's seed in `random_problem`'s order, and the rebuilt
    $A$, $B$ must equal the instance's (so a change of that order is an error, not a wrong init)."""
    pr = cfg["problem"]
    if not pr["shared_right"]:
        raise ValueError("init: [sweep] init = 'balanced' needs [problem] shared_right = true "
                         "(the decoupled geometry of THEORY §5)")
    a, b = np.asarray(pr["spectrum_A"], float), np.asarray(pr["spectrum_B"], float)
    r = a.size
    if p.m != r:
        raise ValueError(f"m: [sweep] init = 'balanced' needs [problem] m = r = {r} (one feature per mode), got {p.m}")
    rng = np.random.default_rng(pr["seed"])
    V = numerics.random_orthonormal(rng, r, r)
    U_A, U_B = numerics.random_orthonormal(rng, p.d_A, r), numerics.random_orthonormal(rng, p.d_B, r)
    for name, U, s, M in (("A", U_A, a, p.A), ("B", U_B, b, p.B)):
        if not np.allclose(U @ np.diag(s) @ V.T, M, rtol=0, atol=1e-12 * max(1.0, float(s.max()))):
            raise RuntimeError(f"balanced init: cannot rebuild the bases of {name} from [problem] seed")
    return numerics.DecoupledInstance(p, a, b, float(pr["noise_A"]), float(pr["noise_B"]), U_A, U_B, V, np.eye(r))


def initial_weights(cfg: dict[str, Any], p: numerics.Problem, init: str) -> tuple[np.ndarray, np.ndarray]:
    """The config's Gaussian init, or the balanced aligned one with $X_0 = $ scale² in every mode."""
    scale, seed = cfg["init"]["scale"], cfg["init"]["seed"]
    if init == "balanced":
        d = decoupled_bases(cfg, p)
        w = np.full(d.r, as_real("scale", scale, low=0.0, strict=True))
        return d.init(w, w)
    return numerics.random_init(p, scale, seed)


def peak_time_prediction(cfg: dict[str, Any], p: numerics.Problem, terms: tuple[str, ...], init: str) -> float:
    r"""$\hat t^*$ (C6) where its hypotheses hold: balanced decoupled init, terms pos + neg, $\lambda > 0$,
    the strongest and weakest modes the same by $g$ and by $\rho$, $\kappa$ rising at $t = 0$. Else NaN."""
    if init != "balanced" or set(terms) != {"pos", "neg"} or not p.lam > 0:
        return NAN
    d = decoupled_bases(cfg, p)
    g, alpha, rho = d.g, d.alpha, d.rho
    i1, ik = int(np.argmax(g)), int(np.argmin(g))
    X0 = float(cfg["init"]["scale"]) ** 2
    if not g[i1] > g[ik] or int(np.argmax(rho)) != i1 or int(np.argmin(rho)) != ik:
        return NAN
    args = (g[i1], g[ik], alpha[i1], alpha[ik], p.lam, X0)
    # κ must rise at t = 0 for a peak to exist (X0 small against the carrying capacities)
    if not numerics.dlog_kappa_closed(0.0, *args) > 0:
        return NAN
    try:
        return float(numerics.peak_prediction(*args).t_hat)
    except (ValueError, ArithmeticError):  # no sign change of the closed-form rate: no peak to predict
        return NAN


def _safe(fn: Any, *args: Any) -> Any:
    """Metrics of a run that blew up may themselves fail: NaN then, the status says why."""
    try:
        return fn(*args)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return None


def _train_gap(cfg: dict[str, Any], p: numerics.Problem, W0: tuple[np.ndarray, np.ndarray], flow: numerics.Trajectory,
               terms: tuple[str, ...], train: str) -> tuple[float, str]:
    run = cfg["run"]
    if train == "gd":
        gd = numerics.gradient_descent(p, *W0, run["eta"], max(flow.t_stop, run["eta"]), terms, n_points=run["n_points"])
        note = "" if gd.status == "completed" else f"gd {gd.status} at t={gd.t_stop:.4g}"
        return numerics.tracking_gaps(p, gd, flow)["M_rel"], note
    from ._train_cmd import FLOW_TERMS

    tr = cfg["train"]
    kw = dict(batch=tr["batch"], loss=tr["loss"], temperature=tr["temperature"], learn_tau=tr["learn_tau"],
              normalize=tr["normalize"], weight_decay=tr["weight_decay"], z_dist=tr["z_dist"],
              n_data=tr["n_data"] or None, n_points=tr["n_points"], seed=tr["seed"])
    kw |= {"steps": tr["steps"]} if tr["steps"] else {"t_end": tr["t_end"]}
    sgd = numerics.sgd(p, *W0, tr["eta"], **kw)
    mu = tr["weight_decay"]
    fp = p.replace(mu=mu) if mu > 0 else p
    fterms = FLOW_TERMS[tr["loss"]] + (("wd",) if mu > 0 else ())
    horizon = (tr["steps"] or max(1, round(tr["t_end"] / tr["eta"]))) * tr["eta"]
    ref = numerics.integrate(fp, *W0, horizon, fterms, method=run["method"], n_points=tr["n_points"],
                             backend=run["backend"])
    note = "" if sgd.status == "completed" else f"{tr['loss']} sgd {sgd.status} at t={sgd.t_stop:.4g}"
    return numerics.tracking_gaps(fp, sgd, ref, fterms)["M_rel"], note


def run_cell(cfg: dict[str, Any], init: str = "random", train: str = "none") -> dict[str, Any]:
    """Outcomes of one validated cell config. Raises only on bad input; a run that diverges or fails
    is an outcome (its status), not an exception."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {k: NAN for k in FLOAT_VARS}
    p = problem_from_config(cfg)
    run = cfg["run"]
    terms = tuple(normalize_terms(run["terms"]))
    W0 = initial_weights(cfg, p, init)
    flow = numerics.integrate(p, *W0, run["t_end"], terms, method=run["method"], n_points=run["n_points"],
                              grad_tol=run["grad_tol"], backend=run["backend"])
    out["status"], out["reason"], out["t_status"] = flow.status, flow.message or "", float(flow.t_stop)
    peak = _safe(numerics.kappa_peak, p, flow)
    if peak is not None:
        out["t_peak"], out["kappa_peak"] = peak
    st = _safe(numerics.detect_stages, p, flow, terms)
    if st is not None:
        out |= {"kappa_final": st.kappa_final, "kappa_limit": st.kappa_limit, "rate1": st.stage1_rate,
                "rate2": st.stage2_rate}
        if "pos" in terms and set(terms) <= {"pos", "neg"}:
            out["rate1_pred"] = st.stage1_predicted
        if set(terms) == {"pos", "neg"}:
            out["rate2_pred"] = st.stage2_predicted
    eig = _safe(numerics.kappa_eig, p, flow.W_A[-1], flow.W_B[-1])
    out["eig_ratio"] = NAN if eig is None else eig
    out["t_peak_pred"] = peak_time_prediction(cfg, p, terms, init)
    if train != "none":
        out["train_gap"], note = _train_gap(cfg, p, W0, flow, terms, train)
        if note:
            out["reason"] = "; ".join(s for s in (out["reason"], note) if s)
    out = {k: (float(v) if k in FLOAT_VARS and v is not None else v) for k, v in out.items()}
    out["wall"] = time.perf_counter() - t0
    return out


def error_outcome(err: BaseException, wall: float) -> dict[str, Any]:
    """A cell that raised: status `error`, the reason in one line."""
    msg = " ".join(str(err).split()) or type(err).__name__
    return {k: NAN for k in FLOAT_VARS} | {"status": "error", "reason": f"{type(err).__name__}: {msg}"[:500],
                                          "wall": wall}


def check_cell(cfg: dict[str, Any], init: str, train: str) -> None:
    """Everything a cell would refuse, checked without running it: the instance, the init, the terms,
    the method, the budgets, and for training the loss and its terms (the same checks as simulate/train)."""
    from ._simulate_cmd import check_budget, check_start
    from ._train_cmd import _check_budget, check_terms

    p = problem_from_config(cfg)
    run = cfg["run"]
    check_start(*initial_weights(cfg, p, init))
    numerics.flow_function(p, run["terms"])
    if run["method"] != "auto" and run["method"] not in numerics.METHODS:
        raise ValueError(f"method: unknown method {run['method']!r}; choose auto or one of {', '.join(numerics.METHODS)}")
    check_budget(cfg, runs=2 if train == "gd" else 1)
    if train == "sgd":
        tr = cfg["train"]
        if tr["loss"] not in numerics.LOSSES:
            raise ValueError(f"loss: unknown loss {tr['loss']!r}; choose from {', '.join(numerics.LOSSES)}")
        if tr["repeats"] != 1:
            raise ValueError(f"repeats: a sweep repeats over [sweep] seeds; leave [train] repeats = 1, got {tr['repeats']}")
        check_terms(cfg, tr)
        _check_budget(cfg, tr)
