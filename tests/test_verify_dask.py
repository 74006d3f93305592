"""`cdyn verify --workers N` / `--scheduler ADDRESS`: the claims on Dask give the serial run's report, byte for byte.

Three engines, one report: serial, an embedded two-worker `LocalCluster` (started by the CLI),
and a remote `dask scheduler` + `dask worker` pair on localhost (`helpers.remote_scheduler`).
The plugin case runs as a user would (`cdyn --plugin FILE verify`, serially and with `--scheduler
ADDRESS`: two fresh processes); the notebook case registers a term and claims directly in this process and sends
them through `claims.run_claims(..., client=...)`. Only the `Command:` line and the wall-time
column of report.md may differ between engines.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from cdyn import claims, theory
from cdyn.cli import main
from tests.helpers import PLUGIN_VERIFY, cdyn_process, readme_plugin_code
from tests.helpers import readme_plugin_report, remote_scheduler  # noqa: F401 -- fixtures

# loadgroup: with test_sweep_run and test_plugins: one remote scheduler+worker pair (helpers.REMOTE) and one
# fresh-process plugin verify (a per-worker session fixture) for the three modules.
pytestmark = pytest.mark.xdist_group("dask")

CHEAP = ["--claims", "C5-thin-false,C7-false,C9-wd", "--examples", "3", "--seed", "1", "--no-figures"]
PLUGIN = readme_plugin_code()


def report_files(out: Path) -> dict[str, bytes]:
    """Every file of a report, report.md without its command line and its seconds column."""
    files = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    md = [line for line in files.pop("report.md").decode().splitlines() if not line.startswith("Command: ")]
    files["report.md"] = "\n".join(re.sub(r"\| [0-9.]+ \| ([✓✗]) \|$", r"| \1 |", line) for line in md).encode()
    return files


def run_in(directory: Path, argv: list[str]) -> int:
    directory.mkdir()
    cwd = os.getcwd()
    os.chdir(directory)  # the same relative --out, so the replay commands in report.md are the same text
    try:
        return main(argv)
    finally:
        os.chdir(cwd)


def test_local_cluster_gives_the_serial_report_byte_for_byte(tmp_path, capsys):
    code = run_in(tmp_path / "serial", ["verify", *CHEAP, "--out", "report"])
    assert run_in(tmp_path / "dask", ["verify", *CHEAP, "--out", "report", "--workers", "2"]) == code
    serial, dask = report_files(tmp_path / "serial" / "report"), report_files(tmp_path / "dask" / "report")
    assert "results.json" in serial and "counterexamples/C5-thin-false.json" in serial
    assert dask == serial
    err = capsys.readouterr().err
    assert "claims on 2 local Dask workers" in err and "3/3" in err  # the bar of claims done


@pytest.mark.parametrize("args, field", [
    (["--workers", "0"], "workers"), (["--workers", "-3"], "workers"),
    (["--scheduler", "nonsense"], "scheduler"), (["--scheduler", "tcp://127.0.0.1:notaport"], "scheduler"),
    (["--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"], "workers"),
])
def test_bad_engine_arguments_are_one_line_before_any_work(tmp_path, capsys, args, field):
    out = tmp_path / "report"
    assert main(["verify", *CHEAP, "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {field}:"), err
    assert not out.exists()


def test_an_unreachable_scheduler_is_refused_before_any_work(tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "report"
    assert main(["verify", *CHEAP, "--out", str(out), "--scheduler", f"tcp://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: scheduler: cannot connect to"), err
    assert not out.exists()


def test_plugin_claims_run_on_a_remote_cluster_as_serially(readme_plugin_report, remote_scheduler):  # noqa: F811
    """The serial run is a fresh process (`helpers.readme_plugin_report`, shared with test_plugins); the
    remote one another, as a second user would run it (the embedded cluster is compared with a serial
    run in `test_local_cluster_gives_the_serial_report_byte_for_byte`)."""
    d, plugin, code, stderr = readme_plugin_report
    assert code == 0, ("serial", stderr[-3000:])
    (d / "remote").mkdir()
    proc = cdyn_process(["--plugin", str(plugin), *PLUGIN_VERIFY, "--scheduler", remote_scheduler], d / "remote")
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, ("remote", stderr[-3000:])
    reports = {name: report_files(d / name / "report") for name in ("serial", "remote")}
    assert "counterexamples/VAR1-false.json" in reports["serial"]  # the plugin's mis-statement was falsified
    assert "counterexamples/C9-wd.json" not in reports["serial"] and "C9-wd" in reports["serial"]["report.md"].decode()
    assert reports["remote"] == reports["serial"]


@pytest.fixture
def notebook_claims():
    """The README plugin's term and claims registered directly, as a notebook cell would (no plugin file)."""
    from cdyn.claims import _registry

    before = set(_registry._CLAIMS)
    namespace = {"__name__": "__notebook__"}  # not importable: cloudpickle sends the functions by value
    exec(compile(PLUGIN, "<notebook cell>", "exec"), namespace)  # noqa: S102 -- the README's own code
    try:
        yield [c for c in claims.all_claims() if c.id not in before]
    finally:
        _registry._forget([i for i in _registry._CLAIMS if i not in before])
        theory.unregister_term("variance")


def test_claims_and_terms_registered_in_python_are_shipped(notebook_claims, remote_scheduler):  # noqa: F811
    from distributed import Client

    chosen = [c for c in notebook_claims if c.id == "VAR1-false"]
    assert claims.claim_origin("VAR1-false") is None  # really not from a plugin
    serial = claims.run_claims(chosen, examples=3, seed=3)
    seen = []
    with Client(remote_scheduler, timeout=30) as client:
        remote = claims.run_claims(chosen, examples=3, seed=3, client=client,
                                   progress=lambda c, n, phase: seen.append((c.id, n)))
    assert [r.as_json() for r in remote] == [r.as_json() for r in serial]
    assert remote[0].result == "falsified"  # the worker integrated the flow of the shipped "variance" term
    assert seen and all(cid == "VAR1-false" for cid, _ in seen)


def test_an_unpicklable_claim_is_refused_by_name(remote_scheduler):  # noqa: F811
    from distributed import Client

    from cdyn.claims import _registry

    lock = threading.Lock()  # a lock cannot be pickled: this claim cannot reach a worker
    base = claims.get_claim("C9-wd")
    odd = claims.Claim(id="LOCKED", title="holds a lock", statement="never sent", latex="", hypotheses=(),
                       strategy=base.strategy, check=lambda inst, _l=lock: base.check(inst))
    claims.register(odd)
    try:
        with Client(remote_scheduler, timeout=30) as client, pytest.raises(ValueError, match="claim 'LOCKED'"):
            claims.run_claims([odd], examples=1, client=client)
    finally:
        _registry._forget(["LOCKED"])
