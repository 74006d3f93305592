"""Full vs structured vs reduced over d, and the d = 4096, r = m = 32 target of issue 5."""

from __future__ import annotations

from threadpoolctl import threadpool_limits

from cdyn import numerics
from cases import scaling_problem, small_init
from cdyn.numerics._integrate import build_system
from timing import Row, interleaved_medians, timed

NAMES = ("pos", "neg")
#: Largest d at which each path is integrated to convergence (full: Σ is d×d; per-RHS
#: cost 8·m·d², and the Problem's dense σI makes Σ_A = A_ξA_ξᵀ a d³ product to form).
MAX_INTEGRATE = {"full": 1024, "structured": 16384, "reduced": 16384}
MAX_RHS = {"full": 4096, "structured": 16384, "reduced": 16384}


def _rhs_time(p, W, path: str, repeats: int) -> float:
    system = build_system(p, NAMES, *W, path)
    f, y = system.make_f(), system.y0
    number = max(1, int(3e7 / max(system.cost, 1.0)))
    with threadpool_limits(1):
        return interleaved_medians([lambda: [f(0.0, y) for _ in range(number)]], repeats)[0] / number


def _integrate(p, W, path: str, method: str = "DOP853"):
    return numerics.integrate(p, *W, t_end=5000.0, grad_tol=1e-6, path=path, method=method)


def run(quick: bool) -> tuple[list[Row], dict]:
    ds = (16, 64, 256, 1024, 4096) if quick else (16, 64, 256, 1024, 4096, 16384)
    curve: dict = {"d": list(ds), "rhs": {k: {} for k in MAX_RHS}, "integrate": {k: {} for k in MAX_RHS},
                   "nfev": {k: {} for k in MAX_RHS}, "auto": {}}
    rows = []
    for d in ds:
        p = scaling_problem(d, r=8, m=8)
        W = small_init(p)
        for path in ("reduced", "structured", "full"):
            if d <= MAX_RHS[path] and not (quick and path == "full" and d > 1024):
                curve["rhs"][path][d] = _rhs_time(p, W, path, 7 if quick else 15)
            limit = MAX_INTEGRATE[path] if not quick else min(MAX_INTEGRATE[path], 256 if path == "full" else 4096)
            if d <= limit:
                reps = 5 if path == "reduced" else (3 if d <= 256 else 1)
                t, tr = timed(lambda: _integrate(p, W, path), 1 if quick and path != "reduced" else reps)
                assert tr.status == "converged", (path, d, tr.status)
                curve["integrate"][path][d], curve["nfev"][path][d] = t, tr.nfev
        curve["auto"][d] = numerics.integrate(p, *W, t_end=1.0).path
        full_i, full_r = curve["integrate"]["full"].get(d), curve["rhs"]["full"].get(d)
        for path in ("reduced", "structured"):
            if d in curve["integrate"][path]:
                rows.append(Row("scaling", f"d={d} r=m=8 {path} vs full: to convergence", curve["integrate"][path][d],
                                full_i, str(curve["nfev"][path][d]), "DOP853, grad_tol 1e-6"))
            rows.append(Row("scaling", f"d={d} r=m=8 {path} vs full: one RHS", curve["rhs"][path][d], full_r, "—",
                            "1 thread"))
        if full_i is not None:
            rows.append(Row("scaling", f"d={d} r=m=8 full: to convergence", full_i, None,
                            str(curve["nfev"]["full"][d]), f"auto path here: {curve['auto'][d]}"))
    return rows, curve


def run_target(quick: bool, naive_4096: bool = False) -> list[Row]:
    """d = 4096, r = m = 32, small init to convergence: reduced (auto) vs full-state integration."""
    p = scaling_problem(4096, r=32, m=32)
    W = small_init(p)
    auto_t, auto = timed(lambda: numerics.integrate(p, *W, t_end=5000.0, grad_tol=1e-6), 3 if quick else 7)
    assert auto.path == "reduced" and auto.status == "converged"
    st_t, st = timed(lambda: _integrate(p, W, "structured", method="DOP853"), 1 if quick else 3)
    rows = [Row("target", "d=4096 r=m=32 to convergence: auto (reduced) vs structured full-state",
                auto_t, st_t, str(auto.nfev), f"{auto.method}; structured {st.nfev} evals, t*={auto.t_stop:.0f}")]
    small_t, _ = timed(lambda: numerics.integrate(p, *W, t_end=5000.0, grad_tol=1e-6, n_points=2), 3 if quick else 7)
    rows.append(Row("target", "  same, returning 2 frames instead of 401 (reconstruction cost)", small_t, auto_t,
                    str(auto.nfev), "W on 401×32×4096 grid = 2×420 MB"))
    rhs_full = _rhs_time(p, W, "full", 3)
    rows.append(Row("target", "d=4096 r=m=32: auto (reduced) vs naive full-state (estimated)", auto_t,
                    rhs_full * st.nfev, f"{st.nfev} (full, est.)",
                    f"full = {st.nfev} evals × {rhs_full * 1e3:.0f} ms/RHS (measured)"))
    if naive_4096:  # ~10 minutes: the naive full-state run itself, once
        full_t, full = timed(lambda: _integrate(p, W, "full", method="DOP853"), 1)
        rows.append(Row("target", "d=4096 r=m=32 to convergence: auto (reduced) vs naive full (measured)",
                        auto_t, full_t, f"{auto.nfev} / {full.nfev}", f"{full.status} t*={full.t_stop:.0f}"))
    if not quick:
        p1 = scaling_problem(1024, r=32, m=32)
        W1 = small_init(p1)
        full_t, full = timed(lambda: _integrate(p1, W1, "full", method="DOP853"), 1)
        red_t, red = timed(lambda: numerics.integrate(p1, *W1, t_end=5000.0, grad_tol=1e-6), 5)
        rows.append(Row("target", "d=1024 r=m=32 to convergence: auto (reduced) vs naive full (measured)",
                        red_t, full_t, f"{red.nfev} / {full.nfev}", f"{red.path}, {red.method}"))
    return rows
