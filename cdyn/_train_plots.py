"""The `cdyn train` figure: κ(t) of the SGD run(s) over the flow's κ(t), on the flow's time axis t = kη."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ._plots import save  # noqa: E402


def plot_train(path: Path, flow: dict, runs: list[dict], limit: float | None, title: str, flow_label: str,
               resolvable: float) -> None:
    """Top: κ(t) (log) of every run and of the flow, with the CCA limit and, shaded, the κ beyond
    float64 resolution. Bottom: the relative gap ‖M_SGD(t) − M_flow(t)‖_F / ‖M_flow(t)‖_F (log)."""
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(7.5, 6.2), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]})
    for i, r in enumerate(runs):
        first = i == 0
        kw = {"lw": 1.3, "color": "C1", "alpha": 1.0 if first else 0.35}
        ax.semilogy(r["t"], r["kappa"], label=r["label"] if first else None, **kw)
        keep = r["t"] > 0  # at t = 0 both start from the same W: the gap is rounding only
        bx.semilogy(r["t"][keep], r["M_gap"][keep], **kw)
    if len(runs) > 1:
        ax.plot([], [], color="C1", alpha=0.35, lw=1.3, label=f"other seeds ({len(runs) - 1})")
    ax.semilogy(flow["t"], flow["kappa"], color="C0", lw=2.4, alpha=0.8, label=flow_label, zorder=1)
    if flow.get("status") == "diverged":
        ax.axvline(flow["t"][-1], color="C0", ls=":", lw=1, label=f"flow diverges, t = {flow['t'][-1]:.3g}")
    if limit is not None:  # only for the loss whose limit it is (pos + neg)
        ax.axhline(limit, color="k", lw=1, ls="-.", label=f"CCA limit (ρ₁/ρ_k)² = {limit:.4g}")
    top = max(np.nanmax(flow["kappa"]), max(np.nanmax(r["kappa"]) for r in runs))
    if top > resolvable:
        ax.axhspan(resolvable, top * 10, color="0.85", zorder=0, label="κ beyond float64 resolution")
    ax.set_ylabel("κ of M = W_A C W_Bᵀ")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3, which="both")
    bx.set_ylabel("‖M − M_flow‖ / ‖M_flow‖", fontsize=8)
    bx.set_xlabel("time t = k·η (SGD step k, step size η)")
    bx.grid(alpha=0.3, which="both")
    fig.tight_layout()
    save(fig, path)
