"""Replay files are untrusted input (claims/_replay.py): bounded size and depth, the record
schema, the claim's instance schema and the check under the budget. Every bad file is one
`error: replay: <field>: ...` line and exit 2, never a traceback (issue 10)."""

from __future__ import annotations

import functools
import json

import pytest
from hypothesis import HealthCheck, given, seed, settings

from cdyn import claims
from cdyn.cli import main
from cdyn.claims._replay import MAX_BYTES, _draw, MAX_DEPTH, ReplayError, instance_schema, nesting_depth, validate_instance


@functools.cache
def simplest(cid: str) -> str:
    """The first (simplest) instance the claim's own strategy draws, as JSON."""
    return json.dumps(_draw(claims.get_claim(cid), 1)[0])


def record(cid: str, **edits) -> dict:
    inst = json.loads(simplest(cid))
    inst.update(edits)
    return {"claim": cid, "instance": inst, "margin": -1.0}


def run_cli(tmp_path, capsys, text: str, *options: str) -> tuple[int, list[str]]:
    f = tmp_path / "cx.json"
    f.write_text(text)
    code = main(["verify", *options, "--replay", str(f)])
    return code, capsys.readouterr().err.splitlines()


def one_line(code: int, err: list[str], start: str) -> str:
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith(start), err
    return err[0]


def test_nesting_depth_skips_strings():
    assert nesting_depth(b'{"a": [1, [2]], "b": "[[[[{{{"}') == 3
    assert nesting_depth(b'"\\"[[["') == 0
    assert nesting_depth(b"[" * 200_000) == 200_000


@pytest.mark.parametrize("text, start", [
    ("[" * 200_000, f"error: replay: cx.json: nests 200000 deep, above the limit of {MAX_DEPTH}"),
    ('{"a":' * 100_000, "error: replay: cx.json: nests 100000 deep"),
    ('{"claim": "' + "x" * MAX_BYTES + '"}', f"error: replay: cx.json: is {MAX_BYTES + 13} bytes, above the limit"),
    ("{not json", "error: replay: cx.json: is not a JSON counterexample (Expecting property name"),
    ('{"claim": "C5", "instance": {"lam": NaN}}', "error: replay: cx.json: is not a JSON counterexample (NaN is not"),
    ('{"claim": "C5", "instance": {"lam": 1e999}}', "error: replay: cx.json: is not a JSON counterexample (number '1e999'"),
    ("[1, 2]", "error: replay: record: must be of type object, got array"),
    ('{"claim": "C5-false"}', "error: replay: instance: missing key"),
    ('{"claim": "C5-false", "instance": "abc"}', "error: replay: instance: must be of type object, got string"),
    ('{"claim": 5, "instance": {}}', "error: replay: claim: must be of type string"),
    ('{"claim": "C99", "instance": {}}', "error: replay: claim: unknown claim id 'C99'"),
    ('{"claim": "C5-false", "instance": {}}', "error: replay: instance.a: missing key"),
])
def test_malformed_files_give_one_line(tmp_path, capsys, text, start):
    one_line(*run_cli(tmp_path, capsys, text), start)


def test_invalid_utf8_gives_one_line(tmp_path, capsys):
    f = tmp_path / "cx.json"
    f.write_bytes(b'{"claim": "\xff"}')
    one_line(main(["verify", "--replay", str(f)]), capsys.readouterr().err.splitlines(),
             "error: replay: cx.json: is not UTF-8 text")


@pytest.mark.parametrize("cid, edits, start", [
    ("C5-false", {"a": "x"}, "error: replay: instance.a: must be of type array, got string"),
    ("C5-false", {"a": [1.0]}, "error: replay: instance.a: needs at least 2 items, got 1"),
    ("C5-false", {"a": [1.0, "b"]}, "error: replay: instance.a[1]: must be of type number"),
    ("C5-false", {"lam": 10**400}, "error: replay: instance.lam: must be <= 1.79769e+308"),
    ("C5-false", {"extra_d_A": True}, "error: replay: instance.extra_d_A: must be of type integer, got boolean"),
    ("C5-false", {"extra_d_A": 10**20}, "error: replay: instance.extra_d_A: must be <= 9.22337e+18"),
    ("C5-false", {"sigma_A": -0.5}, "error: replay: instance.sigma_A: must be >= 0"),
    ("C5-false", {"evil": 1}, "error: replay: instance.evil: unknown key"),
    ("C8-false", {"rho": []}, "error: replay: instance.rho: needs at least"),
    ("C8-false", {"init": {"seed": 0}}, "error: replay: instance.init.balanced: missing key"),
])
def test_edited_instances_name_the_field(tmp_path, capsys, cid, edits, start):
    one_line(*run_cli(tmp_path, capsys, json.dumps(record(cid, **edits))), start)


@pytest.mark.parametrize("cid, edits", [("C5-false", {"extra_d_A": 10**6}), ("C8-false", {"m": 10**6})])
def test_huge_sizes_are_refused_by_the_budget_not_allocated(tmp_path, capsys, cid, edits):
    line = one_line(*run_cli(tmp_path, capsys, json.dumps(record(cid, **edits))), "error: replay: instance: ")
    assert "memory" in line and "4 GiB" in line


def test_max_memory_and_max_steps_options(tmp_path, capsys):
    text = json.dumps(record("C5-false"))
    line = one_line(*run_cli(tmp_path, capsys, text, "--max-memory", "1K"), "error: replay: instance: ")
    assert "above the limit of 1 KiB" in line
    one_line(*run_cli(tmp_path, capsys, text, "--max-memory", "abc"), "error: max_memory: ")
    one_line(*run_cli(tmp_path, capsys, text, "--max-steps", "-1"), "error: max_steps: must be a positive number")


@pytest.mark.parametrize("cid", ["C5-thin-false", "C9-thin-false"])
def test_space_claims_admit_only_what_their_box_builds(tmp_path, capsys, cid):
    c = claims.get_claim(cid)
    rec = record(cid)
    first = c.space.params[0]
    rec["instance"]["params"][first.name] = first.hi * 10 + 1
    one_line(*run_cli(tmp_path, capsys, json.dumps(rec)), f"error: replay: instance.params.{first.name}: must be <=")
    rec = record(cid)
    built = next(k for k in rec["instance"] if k != "params")
    rec["instance"][built] = 5
    one_line(*run_cli(tmp_path, capsys, json.dumps(rec)),
             f"error: replay: instance.{built}: is not what the claim's space builds")


def test_python_records_are_checked_too():
    rec = record("C5-false", lam=float("nan"))
    with pytest.raises(ReplayError, match=r"^replay: instance.lam: must be a finite number"):
        claims.replay(rec)
    deep: list = []
    node = deep
    for _ in range(10_000):
        node.append([])
        node = node[0]
    with pytest.raises(ReplayError, match="nests deeper than the limit"):
        claims.replay({"claim": "C5-false", "instance": {"a": deep}})
    with pytest.raises(ReplayError, match=r"^replay: instance.a: must be a JSON value, got object"):
        claims.replay({"claim": "C5-false", "instance": {"a": object()}})


def test_out_of_memory_anywhere_is_one_line(monkeypatch, capsys, tmp_path):
    import cdyn._verify_cmd as verify_cmd

    def boom(path):
        raise MemoryError("Unable to allocate 7.28 TiB for an array with shape (1000000, 1000000)")

    monkeypatch.setattr(verify_cmd, "_replay", boom)
    assert main(["verify", "--replay", str(tmp_path / "x.json")]) == 2
    assert capsys.readouterr().err == ("error: out of memory: Unable to allocate 7.28 TiB for an array with shape "
                                       "(1000000, 1000000) (raise --max-memory only if the machine has it)\n")


@pytest.mark.parametrize("cid", [c.id for c in claims.all_claims()])
def test_every_claim_accepts_what_its_strategy_draws(cid):
    # The inferred schema must not refuse a genuine instance: draws with another seed than inference's.
    c = claims.get_claim(cid)
    if c.space is None:
        instance_schema(c)

    @seed(20261201)
    @settings(max_examples=15, derandomize=False, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(c.strategy())
    def accepted(instance):
        validate_instance(c, json.loads(json.dumps(instance)))

    accepted()
