"""Same seed, same examples, same results.json — whatever the process imported before (issue 8, part 6).

Hypothesis mixes int/float literals of the local modules in `sys.modules` into its draws,
so without `claims._isolation` the examples depend on the import history. Each test below
states one case of "the same seed gives the same examples and the same results.json": the
engine run twice in one process, after importing a module full of constants, and pytest
against a fresh `cdyn verify` process. A control test shows the hazard is real.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import subprocess
import sys

from hypothesis import strategies as st

from cdyn import claims
from cdyn.claims import CheckResult, Claim
from cdyn.claims import _engine
from cdyn.cli import main

CHEAP = "C7-false,C5-thin-false"


def _recording_claim(seen: list) -> Claim:
    def check(i):
        seen.append(json.dumps(i, sort_keys=True))
        return CheckResult(1.0 + min(i["x"]), {"n": sum(i["n"])})

    # Many floats and ints a draw: most of them come from the provider that mixes in local constants.
    strategy = lambda: st.fixed_dictionaries({"x": st.lists(st.floats(0.0, 1e4), min_size=12, max_size=12),  # noqa: E731
                                              "n": st.lists(st.integers(0, 10**6), min_size=6, max_size=6)})
    return Claim(id="T-det", title="toy", statement="toy", latex="", hypotheses=(), strategy=strategy, check=check,
                 examples=60)


def _run(seed: int = 3) -> tuple[list, str]:
    seen: list = []
    r = claims.run_claim(_recording_claim(seen), seed=seed)
    return seen, json.dumps(r.as_json(), sort_keys=True)


def _import_constants_module(tmp_path, name: str, salt: int):
    # Hypothesis's pool of local constants only grows, so each module brings constants of its own (salt).
    lines = [f"C{i} = {v!r}" for i, v in enumerate([0.125 * k + 1e-3 * k * k + salt / 7.0 for k in range(1, 400)]
                                                     + [7919 * k + salt for k in range(1, 300)])]
    (tmp_path / f"{name}.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))


def test_twice_in_one_process_gives_the_same_examples_and_json():
    assert _run() == _run()


def test_importing_a_module_of_constants_changes_nothing(tmp_path):
    before = _run()
    mod = _import_constants_module(tmp_path, "det_constants_a", 1)
    try:
        assert _run() == before
    finally:
        sys.modules.pop(mod.__name__, None)


def test_control_without_isolation_the_imports_do_change_the_examples(tmp_path, monkeypatch):
    """Not a property of ours: shows the test above can fail (Hypothesis does read the new constants)."""
    monkeypatch.setattr(_engine, "isolated_constants", contextlib.nullcontext)
    before = _run()
    mod = _import_constants_module(tmp_path, "det_constants_b", 2)
    try:
        assert _run()[0] != before[0]
    finally:
        sys.modules.pop(mod.__name__, None)


def test_pytest_and_a_fresh_cdyn_verify_write_the_same_results_json(tmp_path):
    here, fresh = tmp_path / "here", tmp_path / "fresh"
    argv = ["verify", "--claims", CHEAP, "--seed", "2", "--examples", "8", "--no-figures"]
    # 8 examples do not falsify C7-false at this seed (exit 1): the point is that both processes agree.
    code_here = main([*argv, "--out", str(here)])
    code = subprocess.run([sys.executable, "-c", "import sys; from cdyn.cli import main; sys.exit(main(sys.argv[1:]))",
                           *argv, "--out", str(fresh)], capture_output=True, text=True, timeout=600)
    assert code.returncode == code_here in (0, 1), code.stderr[-2000:]
    a, b = (here / "results.json").read_text(encoding="utf-8"), (fresh / "results.json").read_text(encoding="utf-8")
    assert "seconds" not in a and a == b
    assert '"found_by": "local-search"' in a  # the second stage ran in both
    for cid in ("C5-thin-false",):
        ce = "counterexamples/" + cid + ".json"
        assert (here / ce).read_text(encoding="utf-8") == (fresh / ce).read_text(encoding="utf-8")
