"""`[run] backend` in configs and `cdyn simulate --backend`: validated in one line naming the field,
and passed to `integrate` (the run's method says which integrator ran)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cdyn._config import CHOICES, ConfigError, defaults, validate
from cdyn.cli import main
from cdyn.numerics._integrate import BACKENDS


def test_config_accepts_the_backends_of_integrate_and_refuses_others():
    assert CHOICES["run", "backend"] == BACKENDS and defaults()["run"]["backend"] == "scipy"
    assert validate({"run": {"backend": "numba"}})["run"]["backend"] == "numba"
    for bad, says in (("jax", "unknown value 'jax'"), ("Numba", "unknown value 'Numba'"), (3, "must be a string"),
                      ("x" * 500, "unknown value str")):
        with pytest.raises(ConfigError, match=r"^config: \[run\]\.backend") as err:
            validate({"run": {"backend": bad}})
        assert says in str(err.value) and "\n" not in str(err.value) and len(str(err.value)) < 120


@pytest.mark.parametrize("args, field", [(["--backend", "jax"], "--backend"), (["--backend", ""], "--backend")])
def test_simulate_bad_backend_flag_is_one_line(tmp_path, capsys, args, field):
    assert main(["simulate", "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {field}: unknown value") and "scipy, numba" in err[0]


def test_bad_backend_in_a_config_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[run]\nbackend = "fortran"\n')
    assert main(["simulate", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: config: [run].backend: unknown value 'fortran'")


@pytest.mark.xdist_group("numba")  # with the other numba tests: one worker compiles the kernels
def test_simulate_runs_the_backend_it_is_given(tmp_path):
    pytest.importorskip("numba")
    cfg = tmp_path / "small.toml"
    # the sizes of tests/test_backends.py's instance, so the worker's compiled kernels serve both
    cfg.write_text('[run]\nt_end = 5.0\nbackend = "numba"\n[problem]\nd_A = 6\nd_B = 5\nm = 2\n'
                   'spectrum_A = [1.0, 0.6, 0.35]\nspectrum_B = [0.9, 0.55, 0.4]\n')
    # the flag overrides the config, in both directions
    assert main(["simulate", "--config", str(cfg), "--no-gd", "--out", str(tmp_path / "n")]) == 0
    assert main(["simulate", "--config", str(cfg), "--no-gd", "--backend", "scipy", "--out", str(tmp_path / "s")]) == 0
    sn, ss = (json.loads((tmp_path / o / "summary.json").read_text()) for o in ("n", "s"))
    assert sn["run"]["backend"] == "numba" and "numba" in sn["flow"]["method"]
    assert ss["run"]["backend"] == "scipy" and "numba" not in ss["flow"]["method"]
    # The same flow, whichever ran: numba is SciPy's DOP853 step for step, so the runs can part by at
    # most the local errors they commit, 2·steps·(rtol·max|W| + atol) (tests/test_backends.py), with
    # integrate's default tolerances and the evaluations as a bound on the steps.
    assert sn["flow"]["t_stop"] == ss["flow"]["t_stop"] == 5.0
    with np.load(tmp_path / "n" / "trajectory.npz") as a, np.load(tmp_path / "s" / "trajectory.npz") as b:
        W_n, W_s = (np.concatenate([z["flow_W_A"][-1].ravel(), z["flow_W_B"][-1].ravel()]) for z in (a, b))
    assert np.abs(W_n - W_s).max() <= 2 * max(sn["flow"]["nfev"], ss["flow"]["nfev"]) * (1e-8 * np.abs(W_s).max()
                                                                                         + 1e-12)


@pytest.mark.xdist_group("numba")
def test_train_runs_its_flow_on_the_configured_backend(tmp_path):
    """`cdyn train` integrates the flow beside SGD with `[run] backend` too (accepted and ignored before)."""
    pytest.importorskip("numba")
    cfg = tmp_path / "t.toml"
    cfg.write_text('[run]\nbackend = "numba"\n[problem]\nd_A = 6\nd_B = 5\nm = 2\n'
                   'spectrum_A = [1.0, 0.6, 0.35]\nspectrum_B = [0.9, 0.55, 0.4]\n'
                   "[train]\nsteps = 50\neta = 0.02\nbatch = 8\n")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "n")]) == 0
    cfg.write_text(cfg.read_text().replace('"numba"', '"scipy"'))
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "s")]) == 0
    sn, ss = (json.loads((tmp_path / o / "summary.json").read_text()) for o in ("n", "s"))
    assert "numba" in sn["flow"]["method"] and "numba" not in ss["flow"]["method"]
    # The SGD runs do not depend on the flow's backend; only their gap to the flow does (by the
    # backends' rounding, far below the gap itself).
    strip = [[{k: v for k, v in r.items() if k != "gap_to_flow"} for r in s["runs"]] for s in (sn, ss)]
    assert strip[0] == strip[1]
