"""`cdyn train`: mini-batch SGD (spectral, CLIP or positive-only loss) beside the gradient flow.

Writes `train.npz` (snapshots of every run and of the flow), `summary.json` (deterministic:
same config and seed, same file) and `kappa_sgd_vs_flow.png`.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cdyn import numerics
from cdyn.numerics._validate import as_real
from cdyn.numerics._tracking import resolvable_kappa, rms

from ._common import blas_threads, problem_from_config, write_json
from ._config import defaults, load_config
from ._outputs import check_output_dir, staged_files
from ._plots import FORMATS, check_format, describe_run
from ._simulate_cmd import check_start
from .cli import app

#: The population loss each training loss is compared with (its flow).
FLOW_TERMS = {"spectral": ("pos", "neg"), "clip": ("pos", "neg"), "pos-only": ("pos",)}


_D = defaults()["train"]


def _d(key: str) -> str:
    """The help text's default: the [train] key and its built-in value."""
    return f" [default: [train].{key}, {_D[key]!r}]"


def check_terms(cfg: dict[str, Any], tr: dict[str, Any]) -> None:
    """SGD trains the loss named by [train].loss; a config whose [run] terms name another loss is refused
    (it would otherwise be ignored silently): `numerics.sgd` has batch estimators only for its three losses."""
    terms = tuple(cfg["run"]["terms"])
    own = FLOW_TERMS[tr["loss"]] + (("wd",) if tr["weight_decay"] > 0 else ())
    if terms == tuple(defaults()["run"]["terms"]) or set(terms) == set(own):
        return
    extra = [t for t in terms if t not in own]
    name = extra[0] if extra else terms[0]
    raise ValueError(f"terms: cdyn train cannot train [run] terms {', '.join(terms)} (term {name!r}): SGD runs only "
                     f"the losses {', '.join(numerics.LOSSES)} (--loss {tr['loss']} trains {' + '.join(own)}); "
                     "use cdyn simulate for the flow of other terms")


def _merge(cfg: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """Command-line flags override [train] of the config, which overrides the defaults."""
    return cfg["train"] | {k: v for k, v in flags.items() if v is not None}


def _series(p: numerics.Problem, traj: numerics.Trajectory, flow: numerics.Trajectory,
            terms: tuple[str, ...]) -> dict[str, np.ndarray]:
    """κ, population loss and the relative M gap to the flow at the run's snapshot times."""
    fn = numerics.flow_function(p, terms)
    out: dict[str, list[float]] = {"kappa": [], "loss": [], "M_gap": []}
    for t, a, b in zip(traj.t, traj.W_A, traj.W_B):
        M = numerics.feature_covariance(p, a, b)
        out["kappa"].append(numerics.kappa(p, a, b))
        out["loss"].append(fn.loss(a, b))
        if t <= flow.t[-1]:
            Mf = numerics.feature_covariance(p, *flow.at(float(t)))
            out["M_gap"].append(float(np.linalg.norm(M - Mf) / max(np.linalg.norm(Mf), np.finfo(float).tiny)))
        else:
            out["M_gap"].append(np.nan)
    return {"t": traj.t} | {k: np.asarray(v) for k, v in out.items()}


def _stages(t: np.ndarray, kappa: np.ndarray) -> dict[str, float]:
    i = int(np.nanargmax(kappa))
    return {"initial": kappa[0], "peak": kappa[i], "peak_time": t[i], "final": kappa[-1]}


@app.command()
def train(
    loss: Optional[str] = typer.Option(None, "--loss", help="spectral | clip | pos-only." + _d("loss")),
    batch: Optional[int] = typer.Option(None, "--batch", help="Pairs per batch; the others are the negatives." + _d("batch")),
    eta: Optional[float] = typer.Option(None, "--eta", help="Step size η; time is t = kη." + _d("eta")),
    t_end: Optional[float] = typer.Option(None, "--t-end", help="Horizon t = kη; 0: the time the flow of the same "
                                                                 "terms takes to converge (at most [run].t_end)."
                                                                 + _d("t_end")),
    steps: Optional[int] = typer.Option(None, "--steps", help="Number of steps [default: round(t_end/η)]."),
    temperature: Optional[float] = typer.Option(None, "--temperature",
                                                help="CLIP temperature T (logits ⟨f_A, f_B⟩/T)." + _d("temperature")),
    learn_tau: Optional[bool] = typer.Option(None, "--learn-tau/--fixed-tau", help="CLIP: learn the temperature."
                                             + _d("learn_tau")),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay", help="Weight decay μ." + _d("weight_decay")),
    repeats: Optional[int] = typer.Option(None, "--repeats", help="Runs with seeds seed, seed+1, ... (RMS gaps)."
                                          + _d("repeats")),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the batches (the instance is [problem].seed)."
                                       + _d("seed")),
    config: Path = typer.Option(None, "--config", help="TOML file ([problem], [init], [train]); flags override it "
                                                      "[default: none, the built-in values]."),
    out: Path = typer.Option(Path("out_train"), "--out", help="Output directory.", show_default=True),
    fmt: str = typer.Option("png", "--format", help=f"Figure format: {', '.join(FORMATS)}.", show_default=True),
    max_memory: str = typer.Option(None, "--max-memory", help="Memory budget, e.g. 16G [default: 4G]."),
    max_steps: float = typer.Option(None, "--max-steps", help="Budget of SGD steps per run [default: 1e7] and of the "
                                                               "flow's RHS evaluations [default: 1e6]."),
) -> None:
    """Train linear encoders by mini-batch SGD and overlay κ(t) on the gradient flow's κ(t)."""
    check_format(fmt)
    cfg = load_config(config)
    check_output_dir(out)
    tr = _merge(cfg, {"loss": loss, "batch": batch, "eta": eta, "t_end": t_end, "steps": steps,
                      "temperature": temperature, "learn_tau": learn_tau, "weight_decay": weight_decay,
                      "repeats": repeats, "seed": seed})
    if tr["loss"] not in numerics.LOSSES:
        raise ValueError(f"loss: unknown loss {tr['loss']!r}; choose from {', '.join(numerics.LOSSES)}")
    if tr["repeats"] < 1:
        raise ValueError(f"repeats: must be >= 1, got {tr['repeats']}")
    if tr["seed"] < 0:
        raise ValueError(f"seed: must be >= 0, got {tr['seed']}")
    check_terms(cfg, tr)
    with numerics.budget(None if max_memory is None else numerics.parse_bytes(max_memory), max_steps, max_steps):
        _check_budget(cfg, tr)
        _train(cfg, tr, out, fmt)


def _check_budget(cfg: dict, tr: dict) -> None:
    """Refuse, before any work, a run whose step count or arrays exceed the budgets."""
    pr = cfg["problem"]
    dA, dB, m, r = pr["d_A"], pr["d_B"], pr["m"], max(1, len(pr["spectrum_A"]))
    eta = as_real("eta", tr["eta"], low=0.0, strict=True)
    if tr["steps"]:
        n_steps = numerics.check_steps("steps", tr["steps"], "the run")
    else:
        t_end = as_real("t_end", tr["t_end"], low=0.0)
        # Automatic horizon: at most the flow's [run].t_end, which bounds the budget.
        n_steps = numerics.gd_steps(t_end or as_real("run.t_end", cfg["run"]["t_end"], low=0.0, strict=True), eta)
    if min(dA, dB, m, tr["batch"], tr["n_points"]) < 1 or tr["n_data"] < 0:
        return  # the run's own checks name the field
    keep = min(tr["n_points"], n_steps + 1)
    numerics.check_memory(numerics.combine(
        numerics.problem_memory(dA, dB, r, pr["noise_A"] > 0, pr["noise_B"] > 0),
        numerics.moments_memory(dA, dB), {"m": 8.0 * m * (dA + dB)},
        numerics.sgd_memory(tr["batch"], tr["n_data"] or None, dA, dB, r),
        numerics.samples_memory(keep, m, dA, dB, tr["repeats"] + 2)), "this training run")
    numerics.check_samples(keep, tr["repeats"] + 1, "n_points")  # the training runs and the flow


def _flow_setup(p: numerics.Problem, tr: dict) -> tuple[numerics.Problem, tuple[str, ...]]:
    """The flow of the same loss terms and the same μ as the training run."""
    mu = tr["weight_decay"]
    return (p.replace(mu=mu) if mu > 0 else p), FLOW_TERMS[tr["loss"]] + (("wd",) if mu > 0 else ())


def _auto_horizon(cfg: dict, tr: dict, p: numerics.Problem, W0: tuple[np.ndarray, np.ndarray],
                  console: Console) -> str | None:
    """`t_end = 0`: train as long as the flow takes to reach its certified equilibrium (else [run].t_end).

    Returns the line that says so; it is printed with the results, so a run refused later prints
    only its error line."""
    if tr["steps"] or tr["t_end"]:
        return None
    fp, terms = _flow_setup(p, tr)
    with console.status("integrating the flow to choose the horizon"), blas_threads(max(p.d_A, p.d_B)):
        flow = numerics.integrate(fp, *W0, cfg["run"]["t_end"], terms, method=cfg["run"]["method"], n_points=2,
                                  grad_tol=cfg["run"]["grad_tol"], backend=cfg["run"]["backend"])
    tr["t_end"] = float(flow.t_stop)
    tr["t_end_chosen_by"] = f"flow {flow.status} at t={flow.t_stop:.6g}"
    why = ("where the flow converges" if flow.status == "converged"
           else f"[run].t_end: the flow {flow.status} at t={flow.t_stop:.4g}")
    return f"horizon t={tr['t_end']:.4g} ({why})"


def _train(cfg: dict, tr: dict, out: Path, fmt: str) -> None:
    p = problem_from_config(cfg)
    W_A0, W_B0 = numerics.random_init(p, cfg["init"]["scale"], cfg["init"]["seed"])
    check_start(W_A0, W_B0)
    horizon_line = _auto_horizon(cfg, tr, p, (W_A0, W_B0), Console(stderr=True))
    kw = dict(batch=tr["batch"], loss=tr["loss"], temperature=tr["temperature"], learn_tau=tr["learn_tau"],
              normalize=tr["normalize"], weight_decay=tr["weight_decay"], z_dist=tr["z_dist"],
              n_data=tr["n_data"] or None, n_points=tr["n_points"])
    kw |= {"steps": tr["steps"]} if tr["steps"] else {"t_end": tr["t_end"]}
    console = Console(stderr=True)
    runs = []
    t0 = time.perf_counter()
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=console, transient=True)

    def cb(k: int, n: int, task: int) -> None:
        # The bar starts at the first step, so an argument refused by sgd prints only its error line.
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=k, total=n)

    with blas_threads(max(p.d_A, p.d_B)):
        try:
            for r in range(tr["repeats"]):
                task = bar.add_task(f"{tr['loss']} SGD, seed {tr['seed'] + r}", total=None)
                runs.append(numerics.sgd(p, W_A0, W_B0, tr["eta"], seed=tr["seed"] + r,
                                         progress=lambda k, n, task=task: cb(k, n, task), **kw))
        finally:
            if bar.live.is_started:
                bar.stop()
        t_sgd = time.perf_counter() - t0
        fp, terms = _flow_setup(p, tr)
        # The planned horizon (also when a run diverged early: the flow is drawn in full).
        horizon = (tr["steps"] or max(1, round(tr["t_end"] / tr["eta"]))) * tr["eta"]
        with console.status("integrating the flow"):
            flow = numerics.integrate(fp, W_A0, W_B0, horizon, terms, method=cfg["run"]["method"],
                                      n_points=tr["n_points"], backend=cfg["run"]["backend"])
        sf = numerics.series(fp, flow)
        series = [_series(fp, r, flow, terms) for r in runs]
    limit = numerics.kappa_limit(p)
    # The flow's peak from its dense solution (the sample grid can miss it); SGD has only its samples.
    sf_st = _stages(sf["t"], sf["kappa"])
    sf_st["peak_time"], sf_st["peak"] = numerics.kappa_peak(fp, flow)
    # The flow says whether the horizon reaches the limit: the CCA one of pos + neg (not of pos-only, wd).
    # Relative gradient as in `integrate`'s stopping test: ‖∇L‖ / (‖C‖₂ (‖W_A‖_F + ‖W_B‖_F)).
    rel = float(sf["grad_norm"][-1] / (np.linalg.norm(fp.C, 2) * (np.linalg.norm(flow.W_A[-1])
                                                                  + np.linalg.norm(flow.W_B[-1]))))
    story = describe_run(terms, flow.status, float(flow.t_stop), sf["kappa"], float(sf_st["peak"]),
                         float(sf_st["peak_time"]), limit, rel, cfg["run"]["grad_tol"])
    fig_name = f"kappa_sgd_vs_flow.{fmt}"
    with staged_files(out) as stage:  # all three files, or none of them, replace the previous run's
        _write(stage, cfg, tr, fp, runs, series, flow, sf, sf_st, terms, story, fig_name)
    s0 = series[0]
    st = _stages(s0["t"], s0["kappa"])
    if horizon_line:
        typer.echo(horizon_line)
    typer.echo(f"{runs[0].method}: {runs[0].status} at t={runs[0].t_stop:.4g} ({runs[0].nfev} steps, "
               f"{t_sgd:.2f}s for {len(runs)} run(s))")
    typer.echo(f"kappa SGD : initial {st['initial']:.3g}, peak {st['peak']:.3g} at t={st['peak_time']:.3g}, "
               f"final {st['final']:.4g}")
    typer.echo(f"kappa flow: initial {sf_st['initial']:.3g}, peak {sf_st['peak']:.3g} at t={sf_st['peak_time']:.3g}, "
               f"final {sf_st['final']:.4g} ({flow.status}); CCA limit {limit:.4g}")
    typer.echo("flow: " + story["verdict"])
    typer.echo(f"wrote {out}/train.npz, summary.json, {fig_name}")


def _write(out: Path, cfg: dict, tr: dict, p: numerics.Problem, runs: list[numerics.SGDTrajectory],
           series: list[dict[str, np.ndarray]], flow: numerics.Trajectory, sf: dict[str, np.ndarray],
           flow_kappa: dict[str, float], terms: tuple[str, ...], story: dict[str, Any], fig_name: str) -> None:
    """train.npz, summary.json (no timings: same seed, same file) and the figure."""
    arrays: dict[str, np.ndarray] = {"flow_t": sf["t"], "flow_kappa": sf["kappa"], "flow_loss": sf["loss"],
                                     "flow_W_A": flow.W_A, "flow_W_B": flow.W_B}
    for i, (r, s) in enumerate(zip(runs, series)):
        arrays |= {f"run{i}_t": r.t, f"run{i}_W_A": r.W_A, f"run{i}_W_B": r.W_B, f"run{i}_kappa": s["kappa"],
                   f"run{i}_loss": s["loss"], f"run{i}_batch_loss": r.batch_loss, f"run{i}_M_gap": s["M_gap"]}
        if r.temperature is not None:
            arrays[f"run{i}_temperature"] = r.temperature
    np.savez_compressed(out / "train.npz", **arrays)
    limit = numerics.kappa_limit(p)
    gaps = [numerics.tracking_gaps(p, r, flow) for r in runs]
    summary = {
        "problem": cfg["problem"], "init": cfg["init"], "train": tr, "flow_terms": list(terms),
        "runs": [r.summary() | {"kappa": _stages(s["t"], s["kappa"]), "gap_to_flow": g}
                 for r, s, g in zip(runs, series, gaps)],
        "flow": flow.summary() | {"kappa": flow_kappa},
        "cca_limit": limit,
        "limit": {"applies": story["show_limit"], "reached_by_flow": story["limit_reached"],
                  "verdict": story["verdict"], "flow_final_kappa": float(sf["kappa"][-1]),
                  "sgd_final_kappa": float(series[0]["kappa"][-1])},
        "rms_gap_to_flow": {k: rms([g[k] for g in gaps])[0] for k in ("M_rel", "log_kappa", "loss")},
        "sqrt_eta_over_batch": float(np.sqrt(tr["eta"] / tr["batch"])),
    }
    write_json(out / "summary.json", summary)
    label = f"{tr['loss']} SGD, batch {tr['batch']}, η = {tr['eta']:g}"
    if tr["loss"] == "clip":
        final_T = f" → {runs[0].temperature[-1]:.3g} (learned)" if tr["learn_tau"] else ""
        label += f", T = {tr['temperature']:g}{final_T}"
    weights = [f"λ = {p.lam:g}"] * ("neg" in terms) + [f"μ = {p.mu:g}"] * ("wd" in terms)
    flow_label = f"gradient flow of {' + '.join(terms)}" + (f" ({', '.join(weights)})" if weights else "")
    seeds = f"{tr['seed']}" + (f"…{tr['seed'] + len(runs) - 1}" if len(runs) > 1 else "")
    title = (f"κ(t): {tr['loss']} mini-batch SGD (seed {seeds}) over the gradient flow\n"
             + textwrap.fill(f"flow ({flow.status} at t = {flow.t_stop:.4g}): {story['title'].splitlines()[1]}", 90))
    runs_plot = [{"t": s["t"], "kappa": s["kappa"], "M_gap": s["M_gap"], "label": label} for s in series]
    from ._train_plots import plot_train  # matplotlib only when a figure is drawn

    plot_train(out / fig_name, sf | {"status": flow.status}, runs_plot, limit if story["show_limit"] else None, title,
               flow_label, resolvable_kappa(p.m))
