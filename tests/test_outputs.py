"""Results are never lost: bad output paths are refused before any work, and a write that fails
part-way (an error, a file-size limit, a signal) leaves the previous results whole and parseable."""

from __future__ import annotations

import errno
import json
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from cdyn import claims
from cdyn import numerics
from cdyn import _outputs
from cdyn._outputs import OutputError, check_output_dir, staged_directory, staged_files
from cdyn.cli import main

ROOT = Path(__file__).resolve().parent.parent
TINY = """[problem]
d_A = 4
d_B = 4
m = 2
spectrum_A = [1.0, 0.5]
spectrum_B = [1.0, 0.6]
[run]
t_end = 2.0
eta = 0.1
n_points = 21
"""
SIM_FILES = ("trajectory.npz", "summary.json", "kappa_vs_time.png")


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _no_work(*_a, **_k):
    raise AssertionError("the computation started before the output path was checked")


@pytest.fixture()
def a_file(tmp_path):
    f = tmp_path / "a_file"
    f.write_text("not a directory")
    return f


@pytest.mark.parametrize("command, patch", [
    (["simulate"], (numerics, "integrate")),
    (["train", "--steps", "3"], (numerics, "sgd")),
    (["verify", "--claims", "C5", "--examples", "1"], (claims, "run_claim")),
    (["derive"], None),
])
@pytest.mark.parametrize("where", ["file", "under_file", "proc"])
def test_bad_out_is_refused_before_any_work(command, patch, where, a_file, monkeypatch, capsys):
    if patch is not None:
        monkeypatch.setattr(*patch, _no_work)
    out = {"file": a_file, "under_file": a_file / "sub", "proc": Path("/proc/self/cdyn-out")}[where]
    assert main([*command, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: out: "), err
    assert a_file.read_text() == "not a directory"


def test_check_output_dir_accepts_new_and_refuses_foreign_report_dirs(tmp_path):
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("user data")
    check_output_dir(tmp_path / "mine")  # files are added beside the user's
    with pytest.raises(OutputError, match="^out: .*holds no previous report"):
        check_output_dir(tmp_path / "mine", replace_whole=True)  # but a report would replace it whole
    (tmp_path / "mine" / _outputs.MARKER).write_text("{}")
    check_output_dir(tmp_path / "mine", replace_whole=True)


def _simulate(tmp_path: Path, out: Path) -> int:
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    return main(["simulate", "--config", str(cfg), "--out", str(out)])


def test_simulate_failing_mid_write_keeps_the_previous_run(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    assert _simulate(tmp_path, out) == 0
    before = _snapshot(out)
    assert set(before) == set(SIM_FILES)

    def full_disk(*_a, **_k):  # the figure is written after the npz and the JSON
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("cdyn._simulate_cmd.plot_kappa_vs_time", full_disk)
    capsys.readouterr()
    assert _simulate(tmp_path, out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: out: ") and "No space left" in err[0]
    assert _snapshot(out) == before  # no file from the failed run, no staging directory left
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_simulate_under_a_file_size_limit_keeps_the_previous_run(tmp_path, capsys):
    """`ulimit -f` as on a full disk: the PNG (~90 kB) exceeds the limit after the npz (~12 kB) fits.

    Only the soft limit is lowered (and restored after); Python ignores SIGXFSZ, so the write
    fails with EFBIG as it would on a full disk."""
    out = tmp_path / "out"
    assert _simulate(tmp_path, out) == 0
    before = _snapshot(out)
    assert len(before["kappa_vs_time.png"]) > 40_000 > len(before["trajectory.npz"])
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    capsys.readouterr()
    resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, hard))
    try:
        code = _simulate(tmp_path, out)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: out: ") and "File too large" in lines[0], lines
    assert _snapshot(out) == before
    with np.load(out / "trajectory.npz") as z:
        assert "flow_kappa" in z.files and "gd_W_B" in z.files
    json.loads((out / "summary.json").read_text())


def test_staged_files_leave_other_files_alone_and_replace_their_own(tmp_path):
    (tmp_path / "user.txt").write_text("keep me")
    (tmp_path / "a.json").write_text("old")
    with staged_files(tmp_path) as stage:
        (stage / "a.json").write_text("new")
        (stage / "b.json").write_text("new")
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"user.txt": "keep me", "a.json": "new",
                                                                    "b.json": "new"}
    with pytest.raises(RuntimeError), staged_files(tmp_path) as stage:
        (stage / "a.json").write_text("newer")
        raise RuntimeError("the run failed after one file")
    assert (tmp_path / "a.json").read_text() == "new" and len(list(tmp_path.iterdir())) == 3


def _old_report(out: Path) -> dict[str, bytes]:
    (out / "counterexamples").mkdir(parents=True)
    (out / "results.json").write_text(json.dumps({"seed": 0}))
    (out / "counterexamples" / "C5-false.json").write_text(json.dumps({"seed": 0}))
    return _snapshot(out)


def test_report_directory_is_replaced_whole_or_not_at_all(tmp_path):
    out = tmp_path / "report"
    before = _old_report(out)
    with pytest.raises(OutputError, match="File too large"), staged_directory(out) as stage:
        (stage / "results.json").write_text(json.dumps({"seed": 5}))
        raise OSError(errno.EFBIG, "File too large")
    assert _snapshot(out) == before
    with staged_directory(out) as stage:
        (stage / "results.json").write_text(json.dumps({"seed": 5}))
    assert _snapshot(out) == {"results.json": b'{"seed": 5}'}  # the old counterexample went with its run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no staging or old copies left


# The writer starts with the signal handling of a terminal user's Python (Ctrl-C raises KeyboardInterrupt):
# a test runner started in the background (`cmd &` in a non-interactive shell) hands its children SIGINT
# ignored, and an ignored SIGINT stays ignored in a new Python, which would then finish its run.
WRITER = textwrap.dedent("""
    import json, signal, sys, time
    from pathlib import Path
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT, signal.SIGTERM])
    from cdyn._outputs import staged_directory
    with staged_directory(Path(sys.argv[1])) as stage:
        (stage / "counterexamples").mkdir()
        for i in range(10_000):  # a write-heavy phase, interrupted part-way
            (stage / "counterexamples" / f"C{i}.json").write_text(json.dumps({"seed": 5}))
            if i == 20:
                print("writing", flush=True)
            time.sleep(0.001)
        (stage / "results.json").write_text(json.dumps({"seed": 5}))
""")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_report_write_keeps_previous_report(tmp_path, sig):
    out = tmp_path / "report"
    before = _old_report(out)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.05)
    proc.send_signal(sig)
    proc.wait(timeout=20)
    assert proc.returncode != 0
    assert _snapshot(out) == before
    assert json.loads((out / "results.json").read_text()) == {"seed": 0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # the staging directory was removed
