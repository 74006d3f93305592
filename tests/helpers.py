"""Shared test helpers: Hypothesis strategies that build instances *by construction*."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from cdyn import numerics


@st.composite
def problems(draw, max_r: int = 3, max_extra_d: int = 3, max_m: int = 3, noise: bool = True,
             sigma_z: bool = True, lam: tuple[float, float] = (0.5, 2.0)) -> numerics.Problem:
    """Random orthonormal bases × drawn spectra (+ optional isotropic noise and a random Σ_z)."""
    r = draw(st.integers(1, max_r))
    d_A = r + draw(st.integers(0, max_extra_d))
    d_B = r + draw(st.integers(0, max_extra_d))
    m = draw(st.integers(1, max_m))
    spec = st.lists(st.floats(0.3, 2.0), min_size=r, max_size=r)
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    A = numerics.random_orthonormal(rng, d_A, r) @ np.diag(draw(spec)) @ numerics.random_orthonormal(rng, r, r).T
    B = numerics.random_orthonormal(rng, d_B, r) @ np.diag(draw(spec)) @ numerics.random_orthonormal(rng, r, r).T
    A_xi = B_xi = Sz = None
    if noise:
        k_A, k_B = draw(st.integers(0, 2)), draw(st.integers(0, 2))
        A_xi = 0.3 * rng.standard_normal((d_A, k_A)) if k_A else None
        B_xi = 0.3 * rng.standard_normal((d_B, k_B)) if k_B else None
    if sigma_z and draw(st.booleans()):
        V = numerics.random_orthonormal(rng, r, r)
        Sz = V @ np.diag(rng.uniform(0.5, 1.5, r)) @ V.T
    return numerics.Problem(A=A, B=B, A_xi=A_xi, B_xi=B_xi, Sigma_z=Sz, m=m,
                            lam=draw(st.floats(*lam)), mu=draw(st.floats(0.0, 0.5)))


def weights(p: numerics.Problem, scale: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return scale * rng.standard_normal((p.m, p.d_A)), scale * rng.standard_normal((p.m, p.d_B))


def central_difference(f, X: np.ndarray, h: float) -> np.ndarray:
    """∂f/∂X by central differences, entry by entry."""
    G = np.zeros_like(X)
    for idx in np.ndindex(*X.shape):
        E = np.zeros_like(X)
        E[idx] = h
        G[idx] = (f(X + E) - f(X - E)) / (2 * h)
    return G


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


# --- A remote Dask cluster on localhost (a `dask scheduler` + `dask worker` pair), for the engine tests ---

import os as _os
import re as _re
import shutil as _shutil
import subprocess as _subprocess
import sys as _sys
import time as _time
from pathlib import Path as _Path

import pytest as _pytest


def _dask_cli() -> list[str]:
    """The `dask` command of this interpreter's environment."""
    exe = _Path(_sys.executable).with_name("dask")
    return [str(exe)] if exe.exists() else [_shutil.which("dask") or "dask"]


def _scheduler_address(proc: _subprocess.Popen, log: _Path, timeout: float) -> str:
    """The `tcp://host:port` a `dask scheduler --port 0` prints once it listens."""
    end = _time.monotonic() + timeout
    while _time.monotonic() < end:
        m = _re.search(r"Scheduler at:\s+(tcp://\S+)", log.read_text(errors="replace"))
        if m:
            return m.group(1)
        if proc.poll() is not None:
            raise RuntimeError(f"dask scheduler exited ({proc.returncode}): {log.read_text()[-2000:]}")
        _time.sleep(0.1)
    raise RuntimeError(f"dask scheduler did not print its address in {timeout} s: {log.read_text()[-2000:]}")


#: The pair's own housekeeping, which the tests do not exercise: idle with dask's defaults (a 20 ms event-loop
#: tick, a 10 ms statistical profiler, a 0.5 s system monitor, work stealing) it burns ~11 % of a core (3.3 s CPU
#: per 30 s measured), ~2.6 % with these. None of them changes which worker runs a task or what it returns.
QUIET_DASK = {"DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s", "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
              "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "5s",
              "DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING": "False"}


class RemotePair:
    """A `dask scheduler --port 0` with one `dask worker --nthreads 1` on localhost, started on first use.

    Both are subprocesses of this test process (no external service); `start` waits until the worker has
    registered. `stop` kills both: conftest.py calls it once the tests of the xdist group "dask" (the
    users of the pair) are done on this worker, and at the end of the session.
    """

    def __init__(self) -> None:
        self.address: str | None = None
        self._procs: list[_subprocess.Popen] = []
        self._logs: list = []

    def start(self, d: _Path) -> str:
        from distributed import Client

        env = dict(_os.environ, **QUIET_DASK)
        root = str(_Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = _os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        try:
            slog = open(d / "scheduler.log", "w")
            self._logs.append(slog)
            self._procs.append(_subprocess.Popen([*_dask_cli(), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                                  "--no-dashboard"], stdout=slog, stderr=_subprocess.STDOUT,
                                                 env=env, cwd=d))
            address = _scheduler_address(self._procs[0], d / "scheduler.log", 60)
            wlog = open(d / "worker.log", "w")
            self._logs.append(wlog)
            self._procs.append(_subprocess.Popen([*_dask_cli(), "worker", address, "--nthreads", "1", "--nworkers",
                                                  "1", "--no-dashboard", "--host", "127.0.0.1"],
                                                 stdout=wlog, stderr=_subprocess.STDOUT, env=env, cwd=d))
            with Client(address, timeout=60) as client:
                client.wait_for_workers(1, timeout=120)
        except BaseException:
            self.stop()
            raise
        self.address = address
        return address

    def stop(self) -> None:
        for p in reversed(self._procs):  # nothing to save in them: no graceful shutdown to wait for
            p.kill()
        for p in reversed(self._procs):
            p.wait()
        for f in self._logs:
            f.close()
        self._procs, self._logs, self.address = [], [], None


#: The one pair of this (xdist worker) process.
REMOTE = RemotePair()


@_pytest.fixture
def remote_scheduler(tmp_path_factory):
    """Address of this process's `RemotePair` (started by the first test that asks for it)."""
    return REMOTE.address or REMOTE.start(tmp_path_factory.mktemp("dask"))


@_pytest.fixture
def user_terms():
    """`negu`: the built-in neg under another name (so GL(m) is not known in advance); `ridge`: ν/2‖W‖²,
    which leaves only the O(m) orbit (none for m = 1)."""
    import sympy as sp

    from cdyn import theory
    S = theory.symbols
    neg = theory.get_term("neg")
    theory.register_term("negu", neg.expr, weight=neg.weight)
    theory.register_term("ridge", sp.Trace(S.W_A * S.W_A.T) + sp.Trace(S.W_B * S.W_B.T),
                         weight=sp.Symbol("nu", nonnegative=True) / 2)
    yield
    theory.unregister_term("negu")
    theory.unregister_term("ridge")


# --- The README plugin verified from a fresh process, once per worker (test_plugins, test_verify_dask) ---

#: Its claims and the built-in C9-wd (a plugin run that mixes both), at their default budgets.
PLUGIN_VERIFY = ["verify", "--claims", "VAR1,VAR1-false,C9-wd", "--seed", "2", "--no-figures", "--out", "report"]


def readme_plugin_code() -> str:
    from tests.test_readme import blocks

    code = [c for _, c in blocks("python") if "claims.register(" in c]
    assert len(code) == 1, "README.md should hold exactly one plugin block (one that calls claims.register)"
    return code[0]


def cdyn_process(args: list[str], cwd: _Path) -> _subprocess.Popen:
    """`python -m cdyn ARGS` in a fresh process, this repository on PYTHONPATH."""
    env = dict(_os.environ)
    root = str(_Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = _os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return _subprocess.Popen([_sys.executable, "-m", "cdyn", *args], cwd=cwd, env=env, text=True,
                             stdout=_subprocess.PIPE, stderr=_subprocess.PIPE)


@_pytest.fixture(scope="session")
def readme_plugin_report(tmp_path_factory):
    """`cdyn --plugin variance_claims.py verify ...` (the README plugin block saved to a file), run in
    `DIR/serial` by a fresh process, as a user would. Returns (DIR, plugin path, returncode, stderr).

    Shared by the modules of the xdist group "dask" (a session fixture is built once per worker)."""
    d = tmp_path_factory.mktemp("plugin")
    plugin = d / "variance_claims.py"
    plugin.write_text(readme_plugin_code(), encoding="utf-8")
    (d / "serial").mkdir()
    proc = cdyn_process(["--plugin", str(plugin), *PLUGIN_VERIFY], d / "serial")
    _, stderr = proc.communicate(timeout=600)
    return d, plugin, proc.returncode, stderr


# --- Fresh interpreters without the third-party import bill: a fork server ---

_FORK_SERVER = r'''
import json, os, sys, traceback
# Third-party libraries only (~2.2 s CPU of the ~2.5 s a fresh `import cdyn.claims` costs): nothing of the
# project is imported here, so each child imports cdyn itself, in a fresh namespace, as a user's interpreter.
import numpy, scipy.integrate, scipy.linalg, scipy.optimize, scipy.special, sympy, hypothesis
assert not [m for m in sys.modules if m == "cdyn" or m.startswith("cdyn.")]
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.chdir(req["cwd"])
            out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(out, 1)
            os.dup2(err, 2)
            sys.argv = ["-c"]
            exec(compile(req["code"], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if not isinstance(e.code, (int, type(None))):
                print(e.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)
'''


class ForkServer:
    """`run(code, cwd)` is `python -c code` in `cwd`: a fresh process (a fork of a server that has imported
    NumPy, SciPy, SymPy and Hypothesis, and nothing of this project), so nothing the code registers or
    imports reaches the test process or the next code run. Returns a CompletedProcess."""

    def __init__(self, env: dict[str, str]) -> None:
        import tempfile

        self._dir = _Path(tempfile.mkdtemp(prefix="forkserver"))
        self._proc = _subprocess.Popen([_sys.executable, "-c", _FORK_SERVER], stdin=_subprocess.PIPE,
                                       stdout=_subprocess.PIPE, text=True, env=env)

    def run(self, code: str, cwd: _Path) -> _subprocess.CompletedProcess:
        import json

        out, err = self._dir / "stdout", self._dir / "stderr"
        self._proc.stdin.write(json.dumps({"code": code, "cwd": str(cwd), "stdout": str(out),
                                           "stderr": str(err)}) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"fork server exited ({self._proc.wait()})")
        res = _subprocess.CompletedProcess(["-c", code], int(line), out.read_text(), err.read_text())
        out.unlink()
        err.unlink()
        return res

    def close(self) -> None:
        self._proc.stdin.close()
        self._proc.wait(60)
        _shutil.rmtree(self._dir, ignore_errors=True)
