"""The toolkit against what a researcher would write instead (issue 12's tables).

    python benchmarks/peers.py [--repeats 5] [--sizes 16x8,64x8,...] [--no-e2e]

Instances: `random_problem` with isotropic noise σ = 0.1, λ = 1, small init (scale 1e-3),
integrated to convergence: the toolkit's certified run (`grad_tol=1e-6`) fixes the horizon T,
and every contender then integrates [0, T] at the same tolerances (rtol 1e-9, atol 1e-12)
and returns the final W. Contenders, interleaved in each repeat, one BLAS thread each:

* `toolkit`: `numerics.integrate` as a user calls it (path and method "auto", SciPy);
* `toolkit-numba`: the same with `backend="numba"` (SciPy's DOP853, compiled; `_rk_ivp`);
* `numpy`: a hand-written factored NumPy right-hand side (no d×d matrix) with `solve_ivp`,
  DOP853 (the toolkit's explicit method; the comparison is of the work around the solver);
* `jax`: `jax.grad` of the factored loss, diffrax `Tsit5` with a `PIDController` at the
  same tolerances, jitted; its compile time (first call minus a warm call) is reported apart;
* `torch`: torch autograd with torchdiffeq `dopri5`, when both are installed.

A peer that is not installed is skipped with a note. Every contender's final W must agree
with the toolkit's to 1e-9 (relative to max|W|); the largest gap is printed. Ratios are
toolkit time over peer time (below 1: the toolkit is faster), median over repeats with min-max.
The last table is d = 4096, r = m = 32 end to end, `Problem` construction included.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
import numpy as np  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cdyn import numerics  # noqa: E402

SIGMA, RTOL, ATOL, AGREE = 0.1, 1e-9, 1e-12, 1e-9
SIZES = ((16, 8), (64, 8), (256, 8), (1024, 8), (4096, 8), (64, 32), (256, 32), (4096, 32))


def make_problem(d: int, rm: int) -> numerics.Problem:
    """`benchmarks/cases.py`'s `scaling_problem` (the instance of issue 12's d = 4096 figure)."""
    return numerics.random_problem(np.geomspace(1.0, 0.3, rm), np.geomspace(0.9, 0.35, rm), d_A=d, d_B=d, m=rm,
                                   noise_A=SIGMA, noise_B=SIGMA, lam=1.0, seed=1)


def toolkit(p, W, T, backend="scipy"):
    run = numerics.integrate(p, *W, T, n_points=2, rtol=RTOL, atol=ATOL, backend=backend)
    return np.asarray(run.W_A[-1]), np.asarray(run.W_B[-1]), run


def numpy_peer(p, W, T):
    A, B, lam, s2, (m, d) = p.A, p.B, p.lam, SIGMA**2, W[0].shape

    def f(_t, y):
        W_A, W_B = y[: m * d].reshape(m, d), y[m * d:].reshape(m, -1)
        WAA, WBB = W_A @ A, W_B @ B
        H_A = WAA @ WAA.T + s2 * (W_A @ W_A.T)
        H_B = WBB @ WBB.T + s2 * (W_B @ W_B.T)
        dA = WBB @ A.T - lam * (H_B @ (WAA @ A.T + s2 * W_A))
        dB = WAA @ B.T - lam * (H_A @ (WBB @ B.T + s2 * W_B))
        return np.concatenate([dA.ravel(), dB.ravel()])

    sol = solve_ivp(f, (0.0, T), np.concatenate([W[0].ravel(), W[1].ravel()]), method="DOP853", rtol=RTOL, atol=ATOL)
    y = sol.y[:, -1]
    return y[: m * d].reshape(m, d), y[m * d:].reshape(m, -1)


def jax_peer(p):
    """A jitted `solve(W_A, W_B, T)` (None when jax or diffrax is missing)."""
    try:
        import jax
        import diffrax
    except ImportError as err:
        print(f"note: jax peer skipped ({err.name} not installed: pip install -e '.[bench]')")
        return None
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    A, B, lam, s2 = jnp.asarray(p.A), jnp.asarray(p.B), p.lam, SIGMA**2

    def loss(Ws):
        W_A, W_B = Ws
        WAA, WBB = W_A @ A, W_B @ B
        H_A = WAA @ WAA.T + s2 * (W_A @ W_A.T)
        H_B = WBB @ WBB.T + s2 * (W_B @ W_B.T)
        return -jnp.trace(WAA @ WBB.T) + 0.5 * lam * jnp.sum(H_A * H_B)

    grad = jax.grad(loss)

    def field(_t, Ws, _args):
        gA, gB = grad(Ws)
        return (-gA, -gB)

    @jax.jit
    def solve(W_A, W_B, T):
        sol = diffrax.diffeqsolve(diffrax.ODETerm(field), diffrax.Tsit5(), 0.0, T, None, (W_A, W_B),
                                  stepsize_controller=diffrax.PIDController(rtol=RTOL, atol=ATOL, pcoeff=0.3,
                                                                            icoeff=0.4),
                                  saveat=diffrax.SaveAt(t1=True), max_steps=1_000_000)
        return sol.ys[0][0], sol.ys[1][0]

    def run(W, T):
        a, b = solve(jnp.asarray(W[0]), jnp.asarray(W[1]), T)
        return np.asarray(a.block_until_ready()), np.asarray(b)

    return run


def torch_peer(p):
    try:
        import torch
        import torchdiffeq
    except ImportError as err:
        print(f"note: torch peer skipped ({err.name} not installed)")
        return None
    torch.set_num_threads(1)
    A, B, lam, s2 = torch.tensor(p.A), torch.tensor(p.B), p.lam, SIGMA**2

    def loss(W_A, W_B):
        WAA, WBB = W_A @ A, W_B @ B
        H_A = WAA @ WAA.T + s2 * (W_A @ W_A.T)
        H_B = WBB @ WBB.T + s2 * (W_B @ W_B.T)
        return -torch.trace(WAA @ WBB.T) + 0.5 * lam * torch.sum(H_A * H_B)

    def run(W, T):
        m, d = W[0].shape

        def f(_t, y):
            with torch.enable_grad():
                y = y.detach().requires_grad_(True)
                g = torch.autograd.grad(loss(y[: m * d].reshape(m, d), y[m * d:].reshape(m, -1)), y)[0]
            return -g

        y0 = torch.tensor(np.concatenate([W[0].ravel(), W[1].ravel()]))
        y = torchdiffeq.odeint(f, y0, torch.tensor([0.0, T], dtype=torch.float64), rtol=RTOL, atol=ATOL)[-1].numpy()
        return y[: m * d].reshape(m, d), y[m * d:].reshape(m, -1)

    return run


def _gap(ref, got) -> float:
    return max(np.abs(got[0] - ref[0]).max(), np.abs(got[1] - ref[1]).max()) / np.abs(ref[0]).max()


def case(d: int, rm: int, repeats: int) -> list[str]:
    p = make_problem(d, rm)
    W = numerics.random_init(p, 1e-3)
    conv = numerics.integrate(p, *W, 5000.0, n_points=2, grad_tol=1e-6)
    T = float(conv.t_stop)
    runs = {"toolkit": lambda: toolkit(p, W, T), "toolkit-numba": lambda: toolkit(p, W, T, "numba"),
            "numpy": lambda: numpy_peer(p, W, T)}
    compile_s = {}
    for name, make in (("jax", jax_peer), ("torch", torch_peer)):
        fn = make(p)
        if fn is not None:
            runs[name] = (lambda fn=fn: fn(W, T))
    ref = runs["toolkit"]()
    infos = {}
    for k, fn in runs.items():  # warm-up (compiles), and the same final W for every contender
        t0 = time.perf_counter()
        got = fn()
        infos[k] = got[2] if len(got) == 3 else None
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        fn()
        compile_s[k] = max(0.0, first - (time.perf_counter() - t0))
        gap = _gap(ref, got)
        if gap > AGREE:
            raise SystemExit(f"{k} at d={d}, r=m={rm}: final W differs from the toolkit's by {gap:.2e} > {AGREE}")
        compile_s[k] = (compile_s[k], gap)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for k, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    info = ref[2]
    lines = []
    for who in ("toolkit", "toolkit-numba"):
        mine = np.array(times[who])
        row = [f"{d}, {rm}", f"{who}: {infos[who].path} / {infos[who].method}",
               f"{np.median(mine):.3g} s"]
        for peer in ("numpy", "jax", "torch"):
            if peer in times:
                r = mine / np.array(times[peer])
                row.append(f"{np.median(r):.2f} ({r.min():.2f}-{r.max():.2f})")
            else:
                row.append("–")
        lines.append("| " + " | ".join(row) + " |")
    extras = ", ".join(f"{k} {np.median(v):.3g} s (first call +{compile_s[k][0]:.2g} s, gap {compile_s[k][1]:.1e})"
                       for k, v in times.items())
    lines.append(f"|  | T = {T:.4g}, nfev {info.nfev}: {extras} | | | | |")
    return lines


def end_to_end(repeats: int) -> list[str]:
    """d = 4096, r = m = 32 from the data to the final κ, Problem construction included."""
    d, rm = 4096, 32
    out = []
    for backend in ("scipy", "numba"):
        ts, cpu = [], []
        for _ in range(repeats + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            p = make_problem(d, rm)
            run = numerics.integrate(p, *numerics.random_init(p, 1e-3), 5000.0, grad_tol=1e-6, backend=backend)
            numerics.kappa(p, run.W_A[-1], run.W_B[-1])
            ts.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        # The first includes one-off compilation (SymPy, numba cache load). CPU time (one BLAS thread) is what
        # the run costs; wall time on a shared machine adds the waits for a core.
        ts, cpu = np.array(ts[1:]), np.array(cpu[1:])
        out.append(f"| 4096, 32 end to end | {backend} | {np.median(ts):.3g} s ({ts.min():.3g}-{ts.max():.3g}) | "
                   f"{np.median(cpu):.3g} s ({cpu.min():.3g}-{cpu.max():.3g}) | "
                   f"{run.status} at t={run.t_stop:.4g}, {run.path} / {run.method} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", default=",".join(f"{d}x{rm}" for d, rm in SIZES), help="e.g. 16x8,64x32")
    ap.add_argument("--no-e2e", action="store_true", help="skip the d = 4096 end-to-end table")
    args = ap.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",") if s]
    print(f"rtol {RTOL:g}, atol {ATOL:g}, {args.repeats} interleaved repeats, one thread each\n")
    print("| d, r = m | toolkit path / method | toolkit time | vs NumPy | vs JAX+diffrax | vs torch |")
    print("|---|---|---|---|---|---|")
    with threadpool_limits(1, user_api="blas"):
        for d, rm in sizes:
            for line in case(d, rm, args.repeats):
                print(line, flush=True)
        if not args.no_e2e:
            print("\n| case | backend | wall time, median (min-max) | CPU time, median (min-max) | run |\n"
                  "|---|---|---|---|---|")
            for line in end_to_end(args.repeats):
                print(line, flush=True)


if __name__ == "__main__":
    main()
