"""`cdyn simulate`: integrate the flow and run GD beside it on one instance; write out/."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from cdyn import numerics
from cdyn.numerics._flowfn import normalize_terms
from cdyn.numerics._trajectory import weights_norm
from cdyn.numerics._validate import as_int, as_real

from ._common import blas_threads, problem_from_config, write_json
from ._config import CHOICES, check_choice, defaults, load_config
from ._outputs import check_output_dir, staged_files
from ._plots import FORMATS, check_format, describe_run, plot_kappa_vs_time
from .cli import app


def overrides(cfg: dict, flags: dict[str, tuple[str, str, object]]) -> dict:
    """Apply command-line flags over the config: `flags[name] = (section, key, value)`, None = unset.
    Each value is checked here, so a bad flag is one line naming the flag."""
    for name, (sec, key, value) in flags.items():
        if value is None:
            continue
        if key == "terms":
            value = list(normalize_terms(value))  # names only; an unknown one is named in the error
        elif key in ("seed",):
            value = as_int(name, value, low=0)
        elif key in ("t_end", "scale", "eta"):
            value = as_real(name, value, low=0.0, strict=True)
        elif key in ("lam",):
            value = as_real(name, value, low=0.0)
        elif (sec, key) in CHOICES:
            value = check_choice(name, value, CHOICES[sec, key])
        cfg[sec][key] = value
    return cfg


_D = defaults()


def _d(sec: str, key: str, shown: object = None) -> str:
    """The help text's default: the config key and its built-in value."""
    v = _D[sec][key] if shown is None else shown
    return f" [default: [{sec}].{key}, {v}]"


@app.command()
def simulate(
    config: Path = typer.Option(None, "--config", help="TOML file ([problem], [init], [run]); flags override it "
                                                      "[default: none, the built-in values below]."),
    out: Path = typer.Option(Path("out"), "--out", help="Output directory.", show_default=True),
    t_end: float = typer.Option(None, "--t-end", help="Horizon; the run stops earlier once converged."
                                + _d("run", "t_end")),
    terms: str = typer.Option(None, "--terms", help="Comma-separated loss terms."
                              + _d("run", "terms", ",".join(_D["run"]["terms"]))),
    lam: float = typer.Option(None, "--lam", help="Weight λ of the negative pairs." + _d("problem", "lam")),
    seed: int = typer.Option(None, "--seed", help="Seed of the instance (random bases)." + _d("problem", "seed")),
    init_scale: float = typer.Option(None, "--init-scale", help="Scale of the random init." + _d("init", "scale")),
    eta: float = typer.Option(None, "--eta", help="GD step size." + _d("run", "eta")),
    backend: str = typer.Option(None, "--backend", help="Flow integrator: scipy (the reference) or numba (compiled "
                                "DOP853, same steps)." + _d("run", "backend")),
    fmt: str = typer.Option("png", "--format", help=f"Figure format: {', '.join(FORMATS)}.", show_default=True),
    no_gd: bool = typer.Option(False, "--no-gd", help="Skip the gradient-descent run [default: run it]."),
    max_memory: str = typer.Option(None, "--max-memory", help="Memory budget, e.g. 16G [default: 4G]."),
    max_steps: float = typer.Option(None, "--max-steps", help="Budget of GD steps [default: 1e7] and of the flow's "
                                                               "RHS evaluations [default: 1e6]."),
) -> None:
    """Integrate the gradient flow on an instance, with gradient descent beside it."""
    check_format(fmt)
    cfg = overrides(load_config(config), {
        "--t-end": ("run", "t_end", t_end), "--terms": ("run", "terms", terms), "--lam": ("problem", "lam", lam),
        "--seed": ("problem", "seed", seed), "--init-scale": ("init", "scale", init_scale),
        "--eta": ("run", "eta", eta), "--backend": ("run", "backend", backend)})
    cfg["run"]["format"] = fmt
    check_output_dir(out)
    mem = None if max_memory is None else numerics.parse_bytes(max_memory)
    with numerics.budget(mem, max_steps, max_steps):
        check_budget(cfg, runs=1 if no_gd else 2)
        _simulate(cfg, out, no_gd)


def check_budget(cfg: dict, runs: int) -> None:
    """Refuse, before any work, sizes whose arrays (instance, dense moments for κ, stored samples of
    `runs` runs) exceed the memory budget, more samples than the evaluation budget can measure, or a
    GD run of more steps than the step budget."""
    pr, run = cfg["problem"], cfg["run"]
    dA, dB, m, r = pr["d_A"], pr["d_B"], pr["m"], max(1, len(pr["spectrum_A"]))
    if min(dA, dB, m) < 1:
        return  # the instance's own checks name the field
    numerics.check_memory(numerics.combine(
        numerics.problem_memory(dA, dB, r, pr["noise_A"] > 0, pr["noise_B"] > 0),
        numerics.moments_memory(dA, dB), {"m": 8.0 * m * (dA + dB)},
        # the solver's samples, the weights rebuilt from them, and the series of each run
        numerics.samples_memory(3 * run["n_points"], m, dA, dB, runs)), "this simulation")
    if runs == 2:
        numerics.gd_steps(as_real("t_end", run["t_end"], low=0.0, strict=True),
                          as_real("eta", run["eta"], low=0.0, strict=True))
    numerics.check_samples(run["n_points"], runs, "n_points")


def check_start(W_A0, W_B0, max_norm: float = 1e6) -> None:
    """A start above the divergence bound (`max_norm` of the runs) has nothing to show: say so."""
    norm = weights_norm(W_A0, W_B0)
    if not norm <= max_norm:
        raise ValueError(f"scale: the initial weights have norm {norm:.3g}, above the divergence bound {max_norm:g}: "
                         "every run would be 'diverged' at t = 0; lower [init] scale")


def _simulate(cfg: dict, out: Path, no_gd: bool) -> None:
    console = Console(stderr=True)
    p = problem_from_config(cfg)
    run = cfg["run"]
    W_A0, W_B0 = numerics.random_init(p, cfg["init"]["scale"], cfg["init"]["seed"])
    check_start(W_A0, W_B0)
    numerics.flow_function(p, run["terms"])  # fail fast on unknown terms, before any work
    with blas_threads(max(p.d_A, p.d_B)):
        t0 = time.perf_counter()
        with console.status("integrating the flow"):
            flow = numerics.integrate(p, W_A0, W_B0, run["t_end"], run["terms"], method=run["method"],
                                      n_points=run["n_points"], grad_tol=run["grad_tol"], backend=run["backend"])
        t_flow = time.perf_counter() - t0
        gd = None
        if not no_gd:
            with console.status(f"gradient descent, eta={run['eta']:g}"):
                # Same horizon as the flow (which may have stopped early at convergence).
                gd = numerics.gradient_descent(p, W_A0, W_B0, run["eta"], max(flow.t_stop, run["eta"]), run["terms"],
                                               n_points=run["n_points"])
        sf = numerics.series(p, flow)
        sg = numerics.series(p, gd) if gd is not None else None
    arrays = {f"flow_{k}": v for k, v in sf.items()} | {"flow_W_A": flow.W_A, "flow_W_B": flow.W_B}
    if gd is not None:
        arrays |= {f"gd_{k}": v for k, v in sg.items()} | {"gd_W_A": gd.W_A, "gd_W_B": gd.W_B}
    limit = numerics.kappa_limit(p)
    t_peak, k_peak = numerics.kappa_peak(p, flow)  # from the dense solution: the grid can miss the peak
    rho = numerics.canonical_correlations(p)
    summary = {
        "problem": cfg["problem"], "init": cfg["init"], "run": cfg["run"],
        "flow": flow.summary() | {"seconds": t_flow},
        "kappa": {"initial": sf["kappa"][0], "peak": k_peak, "peak_time": t_peak,
                  "final": sf["kappa"][-1], "final_eigenvalue_ratio": sf["kappa_eig"][-1], "cca_limit": limit,
                  "note": "the CCA limit fixes the eigenvalues of lam*M; kappa uses singular values, "
                          "which differ when M is not normal"},
        "canonical_correlations": rho,
        "final_loss": sf["loss"][-1],
        "max_Q_drift_flow": float(sf["Q_drift"].max()),
    }
    if gd is not None:
        wa, wb = flow.at(min(gd.t[-1], flow.t_stop))
        summary["gd"] = gd.summary() | {
            "final_kappa": sg["kappa"][-1], "max_Q_drift": float(sg["Q_drift"].max()),
            "final_gap_to_flow": float(np.sqrt(np.sum((gd.W_A[-1] - wa) ** 2) + np.sum((gd.W_B[-1] - wb) ** 2)))}
    gd_plot = None if sg is None else sg | {"label": f"gradient descent η={run['eta']:g}"}
    story = describe_run(flow.terms, flow.status, float(flow.t_stop), sf["kappa"], k_peak, t_peak, limit)
    summary["kappa"]["limit_reached"] = story["limit_reached"]
    summary["kappa"]["description"] = story["title"]
    fig_name = f"kappa_vs_time.{cfg['run']['format']}"
    with staged_files(out) as stage:  # all three files, or none of them, replace the previous run's
        np.savez_compressed(stage / "trajectory.npz", **arrays)
        write_json(stage / "summary.json", summary)
        plot_kappa_vs_time(stage / fig_name, sf, gd_plot, limit, t_peak, story)
    typer.echo(f"flow: {flow.status} at t={flow.t_stop:.4g} ({flow.nfev} RHS evals, {t_flow:.2f}s, {flow.method})"
               + (f": {flow.message}" if flow.status in ("failed", "plateau", "diverged") and flow.message else ""))
    typer.echo(f"kappa: initial {sf['kappa'][0]:.3g}, peak {k_peak:.3g} at t*={t_peak:.4g}, "
               f"final {sf['kappa'][-1]:.4g} (eigenvalue ratio {sf['kappa_eig'][-1]:.4g}); "
               f"CCA limit (rho_1/rho_k)^2 = {limit:.4g}")
    typer.echo(story["verdict"])
    if gd is not None:
        typer.echo(f"GD: {gd.status} at t={gd.t_stop:.3g}; final kappa {sg['kappa'][-1]:.4g}; "
                   f"|W_gd - W_flow| at t_end = {summary['gd']['final_gap_to_flow']:.3g}")
    typer.echo(f"wrote {out}/trajectory.npz, summary.json, {fig_name}")
