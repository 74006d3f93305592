"""The `cdyn simulate` figure, and the words that go with it. Every figure is opened and looked at
before it ships; its title and legend are written from the run (terms, status, measured κ)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

#: Figure formats every command can write (`--format`).
FORMATS = ("png", "pdf", "svg")
#: κ must change by more than this factor to count as a rise or a fall in a caption (not rounding).
CHANGE = 1.01


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    return fmt


def pyplot():
    """`matplotlib.pyplot` on the Agg backend, imported when a figure is drawn: every `cdyn` command
    imports this module, and matplotlib alone took ~0.8 s of each start (`--help` included)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path) -> None:
    """Save in the format named by the suffix (dpi only matters for PNG)."""
    fig.savefig(path, format=check_format(path.suffix.lstrip(".")), dpi=120)
    pyplot().close(fig)


def describe_run(terms: tuple[str, ...], status: str, t_stop: float, kappa: np.ndarray, k_peak: float, t_peak: float,
                 limit: float, rel_grad: float | None = None, grad_tol: float | None = None) -> dict[str, Any]:
    r"""What κ(t) did, in words: the title, a terminal verdict, and whether the CCA limit was reached.

    The CCA limit $(\rho_1/\rho_k)^2$ is the limit of `pos + neg` only; it is reached when that flow
    ends `converged` (a certified equilibrium, which for this loss is the CCA one), or, for a run
    integrated without a stopping test, when its final relative gradient `rel_grad` is below `grad_tol`
    (the test `converged` starts from; then the text says "stationary", not certified)."""
    k0, kend = float(kappa[0]), float(kappa[-1])
    cca = set(terms) == {"pos", "neg"}
    rises, falls = k_peak > CHANGE * k0, kend * CHANGE < k_peak
    head = f"terms {' + '.join(terms)}: {status} at t = {t_stop:.4g}"
    if status == "diverged":
        story = f"‖W‖ diverged; κ went {k0:.3g} → {kend:.3g}"
    elif rises and falls:
        story = f"κ rises {k0:.3g} → {k_peak:.3g} (stage 1, peak t* = {t_peak:.3g}), then falls to {kend:.4g} (stage 2)"
    elif rises:
        story = f"κ grows {k0:.3g} → {kend:.3g}"
    elif falls:
        story = f"κ falls {k0:.3g} → {kend:.4g}"
    else:
        story = f"κ stays near {kend:.3g}"
    still = status == "completed" and rel_grad is not None and grad_tol is not None and rel_grad <= grad_tol
    reached = (status == "converged" or still) if cca else None
    if reached:
        how = "converged" if status == "converged" else f"stationary (relative gradient {rel_grad:.2g} <= {grad_tol:g})"
        verdict = f"limit reached: {how} at t={t_stop:.4g}, kappa={kend:.4g} vs (rho_1/rho_k)^2={limit:.4g}"
        story += f"; at the CCA equilibrium, (ρ₁/ρ_k)² = {limit:.4g}"
    elif cca:
        verdict = (f"limit not reached at t={t_stop:.4g} ({status}): kappa={kend:.4g} vs (rho_1/rho_k)^2={limit:.4g}"
                   + ("; raise --t-end" if status == "completed" else ""))
        story += f"; CCA limit {limit:.4g} not reached"
    else:
        verdict = f"terms {', '.join(terms)}: no CCA limit applies (it is the limit of pos + neg); final kappa {kend:.4g}"
    return {"title": f"{head}\n{story}", "verdict": verdict, "limit_reached": reached, "show_limit": cca,
            "show_stages": bool(rises and falls and status != "diverged")}


def plot_kappa_vs_time(path: Path, flow: dict, gd: dict | None, limit: float, t_peak: float,
                       story: dict[str, Any]) -> None:
    """κ(t) of the flow (and GD) on a log axis; the stage boundary and the CCA limit only where they apply."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    ax.semilogy(flow["t"], flow["kappa"], lw=2.2, label="κ(t) = σ₁/σ_k of M, gradient flow")
    ax.semilogy(flow["t"], flow["kappa_eig"], lw=1.0, color="C2",
                label="|λ₁/λ_k| of M" + (" (→ CCA limit exactly)" if story["show_limit"] else ""))
    if gd is not None:
        ax.semilogy(gd["t"], gd["kappa"], "--", lw=1.4, label=f"κ(t), {gd['label']}")
    ax.semilogy(flow["t"], flow["kappa_A"], ":", lw=1.2, color="gray", label="κ(W_A A), κ(W_B B)")
    ax.semilogy(flow["t"], flow["kappa_B"], ":", lw=1.2, color="gray")
    if story["show_limit"]:
        ax.axhline(limit, color="k", lw=1, ls="-.", label=f"CCA limit (ρ₁/ρ_k)² = {limit:.4g}")
    if story["show_stages"]:
        ax.axvline(t_peak, color="C3", lw=1, alpha=0.7, label=f"peak t* = {t_peak:.4g} (dense solution)")
        ax.axvspan(flow["t"][0], t_peak, color="C3", alpha=0.08, label="stage 1: κ grows")
        ax.axvspan(t_peak, flow["t"][-1], color="C2", alpha=0.06, label="stage 2: κ falls")
    ax.set_xlabel("time t (GD: t = kη)")
    ax.set_ylabel("condition number κ of M = W_A C W_Bᵀ")
    head, line = story["title"].split("\n", 1)
    ax.set_title(head + "\n" + textwrap.fill(line, 95), fontsize=9)
    ax.legend(fontsize=7.5, loc="best")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    save(fig, path)
