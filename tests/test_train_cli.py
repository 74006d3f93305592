"""`cdyn train` as a user runs it: every loss end to end, reproducible output, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cdyn.cli import main

SMALL = ["--steps", "60", "--batch", "16", "--eta", "0.05"]


@pytest.mark.parametrize("loss", ["spectral", "clip", "pos-only"])
def test_train_writes_outputs(tmp_path, loss):
    assert main(["train", "--loss", loss, *SMALL, "--out", str(tmp_path)]) == 0
    for name in ("train.npz", "summary.json", "kappa_sgd_vs_flow.png"):
        assert (tmp_path / name).is_file()
    assert (tmp_path / "kappa_sgd_vs_flow.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    s = json.loads((tmp_path / "summary.json").read_text())
    run = s["runs"][0]
    assert run["loss"] == loss and run["status"] == "completed" and run["nfev"] == 60
    assert run["t_stop"] == pytest.approx(3.0) and s["flow"]["t_stop"] == pytest.approx(3.0)
    with np.load(tmp_path / "train.npz") as z:
        assert z["run0_t"][-1] == pytest.approx(3.0) and z["run0_kappa"].shape == z["run0_t"].shape
        assert ("run0_temperature" in z.files) == (loss == "clip")
        # The run starts where the flow starts.
        assert z["run0_kappa"][0] == pytest.approx(z["flow_kappa"][0], rel=1e-9)


def test_same_seed_same_summary_and_repeats(tmp_path):
    args = ["train", *SMALL, "--repeats", "2", "--seed", "4"]
    for out in ("a", "b"):
        assert main([*args, "--out", str(tmp_path / out)]) == 0
    a, b = ((tmp_path / o / "summary.json").read_text() for o in ("a", "b"))
    assert a == b
    s = json.loads(a)
    assert [r["method"] for r in s["runs"]] == [s["runs"][0]["method"]] * 2
    assert s["runs"][0]["gap_to_flow"] != s["runs"][1]["gap_to_flow"]  # seeds 4 and 5 differ


def test_config_section_and_flag_precedence(tmp_path):
    cfg = tmp_path / "t.toml"
    cfg.write_text("[train]\nloss = 'pos-only'\nbatch = 8\nsteps = 20\neta = 0.01\n")
    assert main(["train", "--config", str(cfg), "--batch", "4", "--out", str(tmp_path / "o")]) == 0
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["train"]["loss"] == "pos-only" and s["train"]["batch"] == 4 and s["runs"][0]["nfev"] == 20


@pytest.mark.parametrize("args, field", [
    (["--eta", "0"], "eta"), (["--batch", "1"], "batch"), (["--loss", "infonce"], "loss"),
    (["--temperature", "-1", "--loss", "clip"], "temperature"), (["--repeats", "0"], "repeats"),
    (["--weight-decay", "-0.5"], "weight_decay"),
])
def test_bad_flags_name_the_field(tmp_path, capsys, args, field):
    assert main(["train", "--steps", "5", *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and field in err[0], err


def test_bad_flag_from_a_shell_is_one_line_exit_2(tmp_path):
    res = subprocess.run([sys.executable, "-m", "cdyn", "train", "--eta", "-1", "--out", str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "eta" in lines[0] and "Traceback" not in res.stderr


@pytest.mark.parametrize("toml, field", [("[train]\nbogus = 1\n", "[train].bogus"),
                                         ("[train]\nbatch = 'x'\n", "[train].batch")])
def test_bad_config_names_the_key(tmp_path, capsys, toml, field):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert field in capsys.readouterr().err


def test_train_says_whether_the_limit_was_reached(tmp_path, capsys):
    assert main(["train", "--t-end", "3", "--batch", "32", "--eta", "0.05", "--out", str(tmp_path),
                 "--format", "svg"]) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["train"]["t_end"] == 3.0 and s["limit"]["applies"] and s["limit"]["reached_by_flow"] is False
    assert s["limit"]["verdict"].startswith("limit not reached at t=3")
    assert "limit not reached at t=3" in capsys.readouterr().out
    assert (tmp_path / "kappa_sgd_vs_flow.svg").read_text().rstrip().endswith("</svg>")
    assert main(["train", "--loss", "pos-only", *SMALL, "--out", str(tmp_path / "p")]) == 0
    assert json.loads((tmp_path / "p" / "summary.json").read_text())["limit"]["applies"] is False


def test_train_refuses_terms_it_cannot_train(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[run]\nterms = ["pos", "wd", "neg"]\n')
    assert main(["train", "--config", str(cfg), *SMALL, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "terms" in err[0] and "'wd'" in err[0]
    # The same terms are trained once the loss is the one they name.
    assert main(["train", "--config", str(cfg), *SMALL, "--weight-decay", "0.1", "--out", str(tmp_path / "o")]) == 0


def test_default_horizon_is_where_the_flow_converges(tmp_path):
    """`[train] t_end = 0` (the default): train exactly as long as the flow of the same terms takes
    to reach its certified equilibrium; the flow drawn beside it then reaches the limit it draws."""
    from cdyn import numerics
    from cdyn._common import problem_from_config
    from cdyn._config import load_config

    cfg_file = tmp_path / "small.toml"
    cfg_file.write_text("[problem]\nd_A = 2\nd_B = 2\nm = 2\nspectrum_A = [2.0, 1.0]\nspectrum_B = [1.5, 0.8]\n"
                        "[init]\nscale = 0.01\n[train]\nbatch = 8\neta = 0.1\n")
    assert main(["train", "--config", str(cfg_file), "--out", str(tmp_path / "o")]) == 0
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    cfg = load_config(cfg_file)
    p = problem_from_config(cfg)
    ref = numerics.integrate(p, *numerics.random_init(p, 0.01, 0), cfg["run"]["t_end"], ("pos", "neg"),
                             n_points=2, grad_tol=cfg["run"]["grad_tol"])
    assert ref.status == "converged" and ref.t_stop < cfg["run"]["t_end"]
    assert s["train"]["t_end"] == ref.t_stop and s["train"]["t_end_chosen_by"].startswith("flow converged")
    assert s["runs"][0]["nfev"] == round(ref.t_stop / 0.1)
    assert s["limit"]["reached_by_flow"] is True
