"""Figures. Every figure is opened and looked at before it ships."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_kappa_vs_time(path: Path, flow: dict, gd: dict | None, limit: float, t_peak: float, title: str) -> None:
    """κ(t) of the flow (and GD) on a log axis, with the peak `t_peak` (stage boundary) and the CCA limit."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.semilogy(flow["t"], flow["kappa"], lw=2.2, label="κ(t) = σ₁/σ_k of M, gradient flow")
    ax.semilogy(flow["t"], flow["kappa_eig"], lw=1.0, color="C2", label="|λ₁/λ_k| of M (→ CCA limit exactly)")
    if gd is not None:
        ax.semilogy(gd["t"], gd["kappa"], "--", lw=1.4, label=f"κ(t), {gd['label']}")
    ax.semilogy(flow["t"], flow["kappa_A"], ":", lw=1.2, color="gray", label="κ(W_A A), κ(W_B B)")
    ax.semilogy(flow["t"], flow["kappa_B"], ":", lw=1.2, color="gray")
    ax.axhline(limit, color="k", lw=1, ls="-.", label=f"CCA limit (ρ₁/ρ_k)² = {limit:.3g}")
    ax.axvline(t_peak, color="C3", lw=1, alpha=0.7, label=f"peak t* = {t_peak:.3g} (dense solution)")
    ax.axvspan(flow["t"][0], t_peak, color="C3", alpha=0.08, label="stage 1: κ grows")
    ax.axvspan(t_peak, flow["t"][-1], color="C2", alpha=0.06, label="stage 2: κ falls")
    ax.set_xlabel("time t (GD: t = kη)")
    ax.set_ylabel("condition number κ of M = W_A C W_Bᵀ")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="center right")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
