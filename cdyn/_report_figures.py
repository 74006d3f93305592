"""The figures of `report/`. Each function computes what it plots, saves one figure (PNG, PDF or SVG,
from the path's suffix) and returns numbers for the report text. Every figure was opened and
checked against its caption."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter  # noqa: E402

from cdyn import numerics  # noqa: E402

INIT_SCALE, INIT_SEED, T_END = 1e-3, 0, 60.0


FORMATS = ("png", "pdf", "svg")


def save(fig: plt.Figure, path: Path) -> None:
    """Save in the format named by the suffix (raster resolution only matters for PNG)."""
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    fig.savefig(path, format=fmt, dpi=120)
    plt.close(fig)


def deflated_rates(p: numerics.Problem) -> list[float]:
    r"""Growth rate of $\sigma_k(M)$ once the top $j$ modes sit at their CCA values, $j = 0..k-1$.

    Linearising the flow in the weak rows around a state whose top $j$ rows are at the CCA
    equilibrium ($W_A^\top W_B$ restricted to them $= \Sigma_A^{-1/2}K_j\Sigma_B^{-1/2}/\lambda$, $K_j$ the
    best rank-$j$ part of $K$), the negative term cancels that part of $C$: the weak rows
    follow $\dot w_A = w_B C_j^\top$, $\dot w_B = w_A C_j$ with
    $C_j = \Sigma_A^{1/2}(K - K_j)\Sigma_B^{1/2}$. The $k$-th mode of $M$ then grows like
    $e^{2\sigma_{k-j}(C_j)t}$. For $j = 0$ this is $2g_k$; on a decoupled instance it is $2g_k$
    for every $j$ (there $\Sigma^{1/2}$ and $K$ share the basis)."""
    def sqrt_psd(S: np.ndarray) -> np.ndarray:
        w, V = np.linalg.eigh(S)
        return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T

    k = min(p.m, p.rank_C)
    U, s, Vt = np.linalg.svd(numerics.whitened_cross(p))
    SA, SB = sqrt_psd(p.Sigma_A), sqrt_psd(p.Sigma_B)
    rates = []
    for j in range(k):
        Cj = SA @ ((U[:, j:] * s[j:]) @ Vt[j:]) @ SB
        rates.append(float(2 * np.linalg.svd(Cj, compute_uv=False)[k - 1 - j]))
    return rates


def _kappas(p: numerics.Problem, tr: numerics.Trajectory) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([numerics.kappa(p, a, b) for a, b in zip(tr.W_A, tr.W_B)]),
            np.array([numerics.kappa_eig(p, a, b) for a, b in zip(tr.W_A, tr.W_B)]))


def kappa_stages(path: Path) -> dict[str, Any]:
    """κ(t) for pos-only, neg-only and the full loss on the default instance; stage boundary and limit."""
    p = numerics.default_problem()
    W0 = numerics.random_init(p, INIT_SCALE, INIT_SEED)
    kw = dict(rtol=1e-10, atol=1e-14, method="LSODA", jac=False)
    full = numerics.integrate(p, *W0, T_END, ("pos", "neg"), n_points=601, **kw)
    pos = numerics.integrate(p, *W0, T_END, ("pos",), n_points=601, **kw)
    neg = numerics.integrate(p, *W0, T_END, ("neg",), n_points=61, **kw)
    st = numerics.detect_stages(p, full, ("pos", "neg"))
    late = numerics.integrate(p, *full.at(st.t_peak), T_END - st.t_peak, ("neg",), n_points=301, **kw)
    k_full, k_full_eig = _kappas(p, full)
    fig, ax = plt.subplots(figsize=(8, 4.8))
    ax.semilogy(full.t, k_full, lw=2.2, color="C0", label="full loss L_pos + λL_neg")
    ax.semilogy(full.t, k_full_eig, lw=1.0, ls="--", color="C0", alpha=0.8, label="full loss, eigenvalue ratio of M")
    ax.semilogy(pos.t, _kappas(p, pos)[0], lw=1.8, color="C3",
                label=f"positive pairs only ({pos.status} at t={pos.t_stop:.1f})")
    ax.semilogy(neg.t, _kappas(p, neg)[0], lw=1.8, color="C2", label="negative pairs only, from the same small init")
    ax.semilogy(late.t + st.t_peak, _kappas(p, late)[0], lw=1.4, ls=":", color="C2",
                label="negative pairs only, started at the peak")
    ax.axvline(st.t_peak, color="k", lw=1, alpha=0.6)
    ax.axhline(st.kappa_limit, color="k", lw=1, ls="-.", label=f"CCA limit (ρ₁/ρ_k)² = {st.kappa_limit:.4g}")
    ax.text(st.t_peak / 2, 8, "stage 1\nκ rises", ha="center", fontsize=9)
    ax.text(st.t_peak + 6, 8, "stage 2\nκ falls", ha="center", fontsize=9)
    ax.text(st.t_peak * 1.05, st.kappa_peak * 1.5, f"t* = {st.t_peak:.2f}", fontsize=8)
    ax.set_ylim(0.8, max(1e8, 3 * st.kappa_peak))
    ax.set_xlabel("time t")
    ax.set_ylabel("κ = σ₁(M)/σ_k(M),  M = W_A C W_Bᵀ")
    ax.set_title("Default instance: positive pairs grow κ, negative pairs bring it down to the CCA limit")
    ax.legend(fontsize=7.5, loc="upper right")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    save(fig, path)
    # Stage 2 on the decoupled instance with the same spectra and noise, where −2g_k is exact.
    d = numerics.decoupled_instance(numerics.DEFAULT_SPECTRUM_A, numerics.DEFAULT_SPECTRUM_B, sigma_A=0.1,
                                    sigma_B=0.1, seed=0)
    dec = numerics.integrate(d.problem, *d.init(np.full(d.r, INIT_SCALE), np.full(d.r, INIT_SCALE)), 80.0,
                             ("pos", "neg"), n_points=801, **kw)
    dst = numerics.detect_stages(d.problem, dec, ("pos", "neg"))
    return {"stages": st.as_dict(), "kappa_final_eig": float(k_full_eig[-1]),
            "pos_only": {"status": pos.status, "t_stop": pos.t_stop},
            "stage2_deflated_predicted": [-r for r in deflated_rates(p)],
            "decoupled": {"stage2_rate": dst.stage2_rate, "stage2_predicted": dst.stage2_predicted}}


def closed_form_modes(path: Path) -> dict[str, Any]:
    """Per-mode q_i(t) of the matrix flow (markers) against the dsolve logistic (lines), and κ with t*."""
    d = numerics.decoupled_instance(numerics.DEFAULT_SPECTRUM_A, numerics.DEFAULT_SPECTRUM_B, sigma_A=0.1,
                                    sigma_B=0.1, extra_d_A=4, extra_d_B=4, seed=0)
    lam, X0 = d.problem.lam, 1e-6
    T = numerics.saturation_time(X0, d.g[-1], d.alpha[-1], lam, 1e-4)
    tr = numerics.integrate(d.problem, *d.init(np.full(d.r, 1e-3), np.full(d.r, 1e-3)), T, ("pos", "neg"),
                            rtol=1e-10, atol=1e-14, n_points=81, method="LSODA", jac=False)
    q_num = np.array([numerics.mode_q(d, *d.modes(a, b)) for a, b in zip(tr.W_A, tr.W_B)])
    tt = np.linspace(0, T, 600)
    X = numerics.logistic_X(tt[:, None], X0, d.g, d.alpha, lam)
    q_cf = numerics.mode_q(d, np.sqrt(X), np.sqrt(X))
    pred = numerics.peak_prediction(d.g[0], d.g[-1], d.alpha[0], d.alpha[-1], lam, X0)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.3))
    for i in range(d.r):
        ax1.semilogy(tt, q_cf[:, i], color=f"C{i}", lw=1.5, label=f"mode {i + 1}: g = {d.g[i]:.2f}, closed form")
        ax1.semilogy(tr.t, q_num[:, i], "o", color=f"C{i}", ms=3, mfc="none")
        ax1.axhline(d.rho[i] ** 2 / lam, color=f"C{i}", lw=0.8, ls=":")
    ax1.plot([], [], "ko", mfc="none", ms=3, label="matrix flow (solve_ivp), projected")
    ax1.plot([], [], "k:", lw=0.8, label="ρ_i²/λ (CCA)")
    ax1.set(xlabel="time t", ylabel="q_i = σ_i(M)", title="Each mode is the dsolve logistic")
    ax1.legend(fontsize=7)
    ax1.grid(alpha=0.3, which="both")
    k_num = np.array([numerics.kappa(d.problem, a, b) for a, b in zip(tr.W_A, tr.W_B)])
    ax2.semilogy(tt, q_cf.max(1) / q_cf.min(1), lw=1.5, label="κ, closed form")
    ax2.semilogy(tr.t, k_num, "o", ms=3, mfc="none", label="κ, matrix flow")
    ax2.axvline(pred.t_exact, color="C3", lw=1, label=f"t* (root of d log κ/dt) = {pred.t_exact:.3f}")
    ax2.axvline(pred.t_hat, color="C2", lw=1, ls="--", label=f"predicted t̂* = {pred.t_hat:.3f}")
    ax2.axhline(numerics.kappa_limit(d.problem), color="k", ls="-.", lw=1, label="(ρ₁/ρ_k)²")
    ax2.set(xlabel="time t", ylabel="κ", title="κ(t) and the predicted stage boundary")
    ax2.legend(fontsize=7)
    ax2.grid(alpha=0.3, which="both")
    fig.tight_layout()
    save(fig, path)
    X_grid = numerics.logistic_X(tr.t[:, None], X0, d.g, d.alpha, lam)
    err = float(np.abs(np.log(q_num) - np.log(numerics.mode_q(d, np.sqrt(X_grid), np.sqrt(X_grid)))).max())
    return {"max_log_q_error": err, "t_peak_exact": pred.t_exact, "t_peak_predicted": pred.t_hat,
            "peak_relative_error": abs(pred.t_hat - pred.t_exact) / pred.t_exact}


def flow_vs_gd(path: Path) -> dict[str, Any]:
    """κ(t) of the flow and of GD at several η on the default instance, and GD's gap at T vs η."""
    p = numerics.default_problem()
    W0 = numerics.random_init(p, INIT_SCALE, INIT_SEED)
    T = 20.0
    flow = numerics.integrate(p, *W0, T, ("pos", "neg"), rtol=1e-10, atol=1e-14, n_points=401, method="LSODA",
                              jac=False)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.3))
    ax1.semilogy(flow.t, _kappas(p, flow)[0], "k", lw=2.5, label="gradient flow")
    etas, gaps = (0.1, 0.05, 0.025, 0.0125), []
    for i, eta in enumerate(etas):
        gd = numerics.gradient_descent(p, *W0, eta, T, ("pos", "neg"), n_points=401)
        ax1.semilogy(gd.t, _kappas(p, gd)[0], lw=1.2, ls="--", color=f"C{i}", label=f"GD, η = {eta:g}")
        wa, wb = flow.at(gd.t[-1])
        gaps.append(float(np.sqrt(np.sum((gd.W_A[-1] - wa) ** 2) + np.sum((gd.W_B[-1] - wb) ** 2))))
    ax1.set(xlabel="time t (GD: t = kη)", ylabel="κ", title="GD follows the flow's two stages")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3, which="both")
    ax2.loglog(etas, gaps, "o-", label="‖W_GD(T) − W_flow(T)‖")
    ax2.loglog(etas, gaps[-1] * np.asarray(etas) / etas[-1], "k:", label="slope 1 (first order)")
    # Label exactly the four step sizes: log-axis minor labels of 0.0125…0.1 run into each other.
    ax2.xaxis.set_major_locator(FixedLocator(etas))
    ax2.xaxis.set_major_formatter(FixedFormatter([f"{e:g}" for e in etas]))
    ax2.xaxis.set_minor_formatter(NullFormatter())
    ax2.tick_params(axis="x", labelsize=8)
    ax2.set(xlabel="step η", ylabel=f"gap at T = {T:g}", title="GD → flow at first order in η")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3, which="both")
    fig.tight_layout()
    save(fig, path)
    ratios = [gaps[i] / gaps[i + 1] for i in range(len(gaps) - 1)]
    return {"etas": list(etas), "gaps": gaps, "halving_ratios": ratios}


def _absent(ax: plt.Axes, why: str) -> None:
    """Say on an empty panel why it is empty (a claim not run, or no usable points)."""
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, fontsize=10, color="C3", wrap=True)


def cca_limit(path: Path, c8_points: list, c9_points: list, ran: tuple[bool, bool] = (True, True)) -> dict[str, Any]:
    """eig(λM) at the end of the C8 runs against ρ_i², and C9's κ∞ against κ(A)κ(B).
    `ran` says whether C8 and C9 were among the claims of this run; an empty panel says why."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.3))
    for ax, cid, pts, did in ((ax1, "C8", c8_points, ran[0]), (ax2, "C9", c9_points, ran[1])):
        if not pts:
            _absent(ax, f"{cid} was not run in this report\n(not in --claims)" if not did
                    else f"{cid} ran but produced no points\n(every example failed before its limit)")
    if c8_points:
        x, y = np.array(c8_points).T
        ax1.plot([0, 1], [0, 1], "k:", lw=1, label="eig = ρ²")
        ax1.plot(x, y, "o", ms=5, mfc="none", label=f"C8 runs ({len(x)} eigenvalues)")
        ax1.legend(fontsize=8)
    ax1.set(xlabel="ρ_i² (canonical correlations², by construction)", ylabel="eig_i(λM) at the end of the flow",
            title="The limit is CCA", xlim=(0, 1), ylim=(0, 1))
    ax1.grid(alpha=0.3)
    if c9_points:
        a, k_eig, bound, k_sv = np.array(c9_points).T
        noisy = bound - 1 >= 1e-6  # the ratio to ε is meaningful only where ε is above round-off
        if not noisy.any():
            _absent(ax2, "C9 ran, but every example was noiseless (ε below 1e-6):\nno ratio to draw")
        eps = bound[noisy] - 1
        ax2.semilogx(a[noisy], (k_eig[noisy] - 1) / eps, "o", mfc="none", ms=7, label="(κ∞ − 1)/ε, eigenvalue ratio")
        ax2.semilogx(a[noisy], (k_sv[noisy] - 1) / eps, "x", color="C3", label="(κ − 1)/ε, singular values (C8-false)")
        ax2.axhline(1.0, color="k", lw=1, ls="--", label="the bound ε = (1+σ_A²/a²_min)(1+σ_B²/b²_min) − 1")
        ax2.set_yscale("log")
        ax2.legend(fontsize=7.5)
    ax2.set(xlabel="κ(A)·κ(B)", ylabel="(κ − 1)/ε at the limit", title="C9: balance set by the noise, not the anisotropy")
    ax2.grid(alpha=0.3, which="both")
    fig.tight_layout()
    save(fig, path)
    return {"c8_points": len(c8_points), "c9_points": len(c9_points), "c8_ran": ran[0], "c9_ran": ran[1]}
