"""`cdyn verify` as a user runs it: table, report/, replay, determinism, exit codes 0/1/2."""

from __future__ import annotations

import json

import pytest

from cdyn.cli import main

# loadgroup: one verify report shared by the module: written once, on one worker.
pytestmark = pytest.mark.xdist_group("verify_cli")

CHEAP = ["--claims", "C7-false,C9-wd", "--seed", "1", "--no-figures"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("verify") / "report"
    code = main(["verify", *CHEAP, "--out", str(out)])
    return code, out


def test_verify_writes_the_report(report, capsys):
    code, out = report
    assert code == 0
    data = json.loads((out / "results.json").read_text())
    assert data["ok"] is True and [c["id"] for c in data["claims"]] == ["C7-false", "C9-wd"]
    assert [c["result"] for c in data["claims"]] == ["falsified", "verified"]
    assert (out / "counterexamples" / "C7-false.json").is_file()
    assert not (out / "counterexamples" / "C9-wd.json").exists()
    md = (out / "report.md").read_text()
    assert "| C7-false | false | falsified |" in md and "Hypotheses:" in md and "$$" in md


def test_table_is_printed(tmp_path, capsys):
    assert main(["verify", "--claims", "C9-wd", "--examples", "2", "--out", str(tmp_path), "--no-figures"]) == 0
    printed = capsys.readouterr().out
    for col in ("id", "expected", "result", "examples", "worst margin", "seconds", "C9-wd", "verified"):
        assert col in printed


def test_same_seed_gives_identical_results_json(report, tmp_path):
    _, out = report
    again = tmp_path / "again"
    assert main(["verify", *CHEAP, "--out", str(again)]) == 0
    assert (again / "results.json").read_text() == (out / "results.json").read_text()


def test_replay_reproduces_and_detects_tampering(report, tmp_path, capsys):
    _, out = report
    ce_path = out / "counterexamples" / "C7-false.json"
    assert main(["verify", "--replay", str(ce_path)]) == 0
    assert "reproduced exactly" in capsys.readouterr().out
    ce = json.loads(ce_path.read_text())
    ce["margin"] += 1e-9
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(ce))
    assert main(["verify", "--replay", str(bad)]) == 1
    assert "DIFFERENT" in capsys.readouterr().out


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    for argv, field in ((["--claims", "C5,C99"], "claims"), (["--examples", "0"], "examples"),
                        (["--replay", str(tmp_path / "missing.json")], "replay")):
        assert main(["verify", *argv, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and field in err[0]
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    assert main(["verify", "--replay", str(junk)]) == 2


def test_an_unexpected_outcome_exits_1(tmp_path):
    # Two examples are too few to falsify C7-false with this seed: the run must say so, not pass.
    assert main(["verify", "--claims", "C7-false", "--examples", "2", "--seed", "1", "--out", str(tmp_path),
                 "--no-figures"]) == 1


def test_figures_are_written(tmp_path):
    out = tmp_path / "fig"
    assert main(["verify", "--claims", "C8", "--examples", "1", "--out", str(out)]) == 0
    for name in ("kappa_stages.png", "closed_form_modes.png", "flow_vs_gd.png", "cca_limit.png"):
        png = out / name
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
