"""`cdyn sweep`: serial, a two-worker LocalCluster and a remote scheduler + worker give the same dataset;
a plugin term runs on the workers; a killed sweep resumes computing only what is missing; replay is exact."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from cdyn import cli
from cdyn._sweep_spec import identity
from cdyn._sweep_store import open_store
from tests.helpers import remote_scheduler  # noqa: F401 -- a fixture

# loadgroup: with test_verify_dask and test_plugins: one remote scheduler+worker pair (helpers.REMOTE) for the group.
pytestmark = pytest.mark.xdist_group("dask")

PLUGIN = textwrap.dedent("""
    import sympy as sp
    from cdyn import theory
    from cdyn.theory.symbols import W_A, W_B, Sigma_A, Sigma_B

    theory.register_term("sweep_var", (sp.Trace(W_A * Sigma_A * W_A.T) + sp.Trace(W_B * Sigma_B * W_B.T)) / 2,
                         weight=sp.Symbol("nu"), description="variance penalty for the sweep tests")
    """)

CONFIG = textwrap.dedent("""
    [problem]
    d_A = 4
    d_B = 3
    m = 2
    spectrum_A = [2.0, 0.5]
    spectrum_B = [1.5, 0.6]

    [run]
    t_end = 12.0
    n_points = 41
    terms = ["pos", "neg", "sweep_var"]

    [sweep]
    seeds = 2
    [sweep.grid]
    "problem.lam" = [0.5, 1.0]
    "problem.params.nu" = [0.0, 0.3]
    """)
N_CELLS = 8
#: Outcomes that depend on the run, not on the numbers: timings and which invocation computed a cell.
RUN_VARS = ("wall", "run")


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    """One plugin file for the module: a process registers its term once."""
    path = tmp_path_factory.mktemp("plugin") / "var.py"
    path.write_text(PLUGIN)
    return path


@pytest.fixture
def setup(tmp_path, plugin):
    (tmp_path / "var.py").symlink_to(plugin)
    (tmp_path / "sweep.toml").write_text(CONFIG)
    return tmp_path


def sweep(tmp: Path, out: str, *args: str) -> int:
    return cli.main(["--plugin", str((tmp / "var.py").resolve()), "sweep", "--config", str(tmp / "sweep.toml"),
                     "--out", str(tmp / out), *args])


def numbers(path: Path):
    return open_store(path).drop_vars(list(RUN_VARS))


def assert_same(a, b) -> None:
    """Every array and coordinate equal exactly (NaN = NaN), attrs that say what was computed equal."""
    assert set(a.data_vars) == set(b.data_vars) and a.sizes == b.sizes
    for k in a.data_vars:
        x, y = a[k].values, b[k].values
        if x.dtype.kind == "f":
            assert np.array_equal(x, y, equal_nan=True), k
        else:
            assert (x == y).all(), k
    for k in a.coords:
        assert np.array_equal(a[k].values, b[k].values), k
    for k in ("plugins", "version", "seeds", "design", "fields", "init", "train"):
        assert a.attrs[k] == b.attrs[k], k
    assert identity(a.attrs["config_toml"]) == identity(b.attrs["config_toml"])  # engine keys aside


@pytest.fixture(scope="module")
def reference(tmp_path_factory, plugin) -> Path:
    """The serial sweep, run once per process; each test gets its own copy."""
    tmp = tmp_path_factory.mktemp("reference")
    (tmp / "var.py").symlink_to(plugin)
    (tmp / "sweep.toml").write_text(CONFIG)
    assert sweep(tmp, "serial.zarr", "--workers", "0") == 0
    ds = open_store(tmp / "serial.zarr")
    assert ds.done.values.all() and (ds.run.values == 0).all()
    # the plugin term ran: nu changes the outcome, and every flow finished
    assert set(ds.status.values.ravel()) <= {"completed", "converged"}
    assert not np.array_equal(ds.kappa_final.sel(nu=0.0).values, ds.kappa_final.sel(nu=0.3).values)
    assert json.loads(ds.attrs["plugins"])[0]["path"] == str(plugin.resolve())
    return tmp / "serial.zarr"


@pytest.fixture
def serial(setup, reference):
    shutil.copytree(reference, setup / "serial.zarr", symlinks=True)
    return setup


def test_serial_and_two_worker_local_cluster_agree(serial, capsys):
    """The embedded cluster's workers are forked from the driver after its first cell (no re-import)."""
    assert sweep(serial, "local.zarr", "--workers", "2") == 0
    assert "local cluster, forked workers" in capsys.readouterr().out
    assert_same(numbers(serial / "serial.zarr"), numbers(serial / "local.zarr"))


def _start(*cmd: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", *cmd], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, **kw)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_remote_scheduler_and_worker_agree_with_serial(serial, remote_scheduler):  # noqa: F811
    """A `dask scheduler` + `dask worker` pair on localhost (tests/helpers.py), reached by address."""
    assert sweep(serial, "remote.zarr", "--scheduler", remote_scheduler) == 0
    assert_same(numbers(serial / "serial.zarr"), numbers(serial / "remote.zarr"))


def test_killed_sweep_resumes_only_the_missing_cells(serial):
    # One cell a task, so cells reach the store one by one while the process is killed.
    (serial / "sweep.toml").write_text(CONFIG.replace("seeds = 2", "seeds = 2\nbatch = 1"))
    store = serial / "killed.zarr"
    proc = subprocess.Popen([sys.executable, "-m", "cdyn", "--plugin", str((serial / "var.py").resolve()), "sweep", "--config",
                             str(serial / "sweep.toml"), "--out", str(store), "--workers", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    import zarr

    try:
        deadline = time.monotonic() + 120
        n_done = 0
        while n_done < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
            if (store / "done" / "zarr.json").is_file():
                n_done = int(np.asarray(zarr.open_group(str(store), mode="r")["done"][...]).sum())
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    before = open_store(store)
    done_before = before.done.values.copy()
    assert 2 <= done_before.sum() < N_CELLS, "the sweep must be killed part-way"
    assert sweep(serial, "killed.zarr", "--workers", "0") == 0
    after = open_store(store)
    assert after.done.values.all()
    # run 0 computed exactly the cells done before the kill, run 1 exactly the others: none twice
    assert np.array_equal(after.run.values == 0, done_before) and np.array_equal(after.run.values == 1, ~done_before)
    runs = json.loads(after.attrs["runs"])
    assert len(runs) == 2 and runs[1]["cells"] == N_CELLS - done_before.sum()
    for k in ("wall", "t_peak", "status"):  # the cells of run 0 were not touched by run 1
        assert np.array_equal(after[k].values[done_before], before[k].values[done_before])
    assert_same(numbers(serial / "serial.zarr"), after.drop_vars(list(RUN_VARS)))
    # a third run has nothing to do
    assert sweep(serial, "killed.zarr", "--workers", "0") == 0
    assert len(json.loads(open_store(store).attrs["runs"])) == 2


def test_replay_reproduces_a_stored_cell(serial, capsys):
    store = serial / "serial.zarr"
    capsys.readouterr()
    assert cli.main(["--plugin", str((serial / "var.py").resolve()), "sweep", "--replay", str(store), "lam=1.0,nu=0.3,seed=1"]) == 0
    out = capsys.readouterr().out
    assert "reproduced exactly" in out and "DIFFERENT" not in out
    assert cli.main(["--plugin", str((serial / "var.py").resolve()), "sweep", "--replay", str(store), "7"]) == 0
    assert "cell 7: lam=1.0,nu=0.3,seed=1" in capsys.readouterr().out
    # a stored number changed by one ulp is caught
    import zarr

    arr = zarr.open_group(str(store), mode="r+")["kappa_final"]
    arr[1, 1, 1] = np.nextafter(arr[1, 1, 1], np.inf)
    assert cli.main(["--plugin", str((serial / "var.py").resolve()), "sweep", "--replay", str(store), "7"]) == 1
    assert "DIFFERENT: kappa_final" in capsys.readouterr().out


def test_store_refuses_another_config_unless_forced(serial, capsys):
    (serial / "sweep.toml").write_text(CONFIG.replace('"problem.lam" = [0.5, 1.0]', '"problem.lam" = [0.5]'))
    assert sweep(serial, "serial.zarr", "--workers", "0") == 2
    assert "different config" in capsys.readouterr().err
    assert open_store(serial / "serial.zarr").sizes["lam"] == 2
    assert sweep(serial, "serial.zarr", "--workers", "0", "--force") == 0
    ds = open_store(serial / "serial.zarr")
    assert ds.sizes["lam"] == 1 and ds.done.values.all()
