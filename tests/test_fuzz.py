"""Fuzz: hostile configs, replay files and API arguments get a result or one clean error (issue 10).

Each input either succeeds or fails cleanly, within `TIME_LIMIT` seconds:
* CLI (`cdyn.cli.main` in-process, under `--max-memory 256M --max-steps 2e4`): exit 0/1, or
  exit 2 with exactly one stderr line `error: ...` (`error: replay: ...` for a replay file) and
  no traceback;
* API (`numerics.Problem`, `random_problem`, `integrate`, `gradient_descent`, under
  `numerics.budget`): a result, or a `ValueError`/`TypeError` whose message names the field that
  was made hostile.

The CI run draws a few examples of each kind (seconds). A longer run counts outcomes instead of
stopping at the first failure and prints the tally (tried, clean, failed) per kind:

    CDYN_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py -s -p no:cacheprovider
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import time
import traceback
from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdyn import numerics
from cdyn.cli import main

LONG = int(os.environ.get("CDYN_FUZZ_EXAMPLES", "0"))
TIME_LIMIT = 60.0  # seconds per input, on a loaded 2-core machine; the budgets keep real runs far below it
BUDGET = ["--max-memory", "256M", "--max-steps", "2e4"]
FUZZ = settings(max_examples=LONG or 6, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
TALLY: dict[str, Counter] = {}
FAILURES: dict[str, list[str]] = {}


def verdict(kind: str, what: Any, failure: str | None, seconds: float, ran: bool) -> None:
    """Count an outcome (`ran`: a result rather than an error); in CI fail at once (so Hypothesis
    shrinks), in a long run collect."""
    if failure is None and seconds > TIME_LIMIT:
        failure = f"took {seconds:.1f}s > {TIME_LIMIT}s"
    TALLY.setdefault(kind, Counter())["tried"] += 1
    TALLY[kind]["failed" if failure else "clean"] += 1
    TALLY[kind]["ran" if ran and not failure else "refused" if not failure else "-"] += 1
    TALLY[kind]["max_seconds"] = max(TALLY[kind]["max_seconds"], math.ceil(seconds))
    if failure:
        line = f"{failure} <- {str(what)[:400]}"
        if not LONG:
            raise AssertionError(line)
        FAILURES.setdefault(kind, []).append(line)


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    for kind, c in sorted(TALLY.items()):
        print(f"\nfuzz {kind}: tried {c['tried']}, clean {c['clean']} ({c['ran']} ran, {c['refused']} refused "
              f"with one clean error), failed {c['failed']}; slowest input {c['max_seconds']} s")
        for line in FAILURES.get(kind, [])[:20]:
            print("   ", line)


def run_cli(argv: list[str]) -> tuple[int | None, str, str, str | None, float]:
    out, err = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    crash = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except BaseException as e:  # noqa: BLE001 - anything escaping main() is a finding
            code, crash = None, f"{type(e).__name__} escaped main(): " + traceback.format_exc(limit=-3)[-600:]
    return code, out.getvalue(), err.getvalue(), crash, time.perf_counter() - t0


def cli_failure(code: int | None, err: str, crash: str | None, prefix: str = "error: ") -> str | None:
    if crash:
        return crash
    if code in (0, 1):
        return "Traceback in stderr" if "Traceback" in err else None
    lines = err.splitlines()
    if code != 2 or len(lines) != 1 or not lines[0].startswith(prefix):
        return f"exit {code}, stderr {err[-600:]!r}"
    return None


# --- hostile values ---------------------------------------------------------------------------

NUMBERS = st.sampled_from([0, -1, 1, 2, 10**6, 10**9, 2**63 - 1, 10**30, 0.0, -0.0, 1e-300, -1e-3, 0.5, 3.0,
                           1e300, -1e300, 1e308, math.nan, math.inf, -math.inf, 5e-324])
SCALARS = st.one_of(NUMBERS, st.booleans(), st.text(max_size=8), st.floats(), st.integers(-10**20, 10**20))


class Deep:
    """`depth` nested one-element lists around `leaf`, written out without recursion."""

    def __init__(self, depth: int, leaf: Any) -> None:
        self.depth, self.leaf = depth, leaf

    def __repr__(self) -> str:
        return f"Deep({self.depth}, {self.leaf!r})"


def nested_list(d: Deep) -> Any:
    leaf = d.leaf
    for _ in range(d.depth):
        leaf = [leaf]
    return leaf


def nested(depth: int, leaf: Any) -> Deep:
    return Deep(depth, leaf)


VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=5),
    st.dictionaries(st.text(max_size=5), SCALARS, max_size=3),
    st.builds(nested, st.integers(2, 3000), SCALARS),
)


# --- configs ----------------------------------------------------------------------------------

BASE = {
    "problem": {"seed": 0, "d_A": 4, "d_B": 4, "m": 2, "spectrum_A": [2.0, 1.0], "spectrum_B": [1.5, 0.8],
                "noise_A": 0.1, "noise_B": 0.1, "lam": 1.0, "mu": 0.0, "shared_right": False},
    "init": {"scale": 1e-3, "seed": 0},
    "run": {"t_end": 5.0, "eta": 0.05, "terms": ["pos", "neg"], "method": "auto", "n_points": 51, "grad_tol": 1e-6},
    "train": {"batch": 32, "eta": 0.05, "t_end": 2.0, "n_points": 21},
}
KEYS = [(s, k) for s, sec in BASE.items() for k in sec] + [
    ("train", k) for k in ("loss", "steps", "n_data", "temperature", "learn_tau", "normalize", "weight_decay",
                           "z_dist", "seed", "repeats")] + [("problem", "params"), ("nope", "x"), ("run", "nope")]


def toml_value(v: Any) -> str:
    if isinstance(v, Deep):
        return "[" * v.depth + toml_value(v.leaf) + "]" * v.depth
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(x)}" for k, x in v.items()) + " }"


def toml(cfg: dict[str, Any]) -> str:
    lines = []
    for sec, table in cfg.items():
        if not isinstance(table, dict):
            lines.append(f"{sec} = {toml_value(table)}")
            continue
        lines.append(f"[{sec}]")
        lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


@st.composite
def configs(draw: Any) -> str:
    if draw(st.integers(0, 9)) == 0:  # sometimes not TOML at all
        return draw(st.text(max_size=200))
    cfg = json.loads(json.dumps(BASE))
    for _ in range(draw(st.integers(1, 3))):
        sec, key = draw(st.sampled_from(KEYS))
        op = draw(st.sampled_from(["set", "set", "set", "delete", "section"]))
        if op == "section":
            cfg[sec] = draw(VALUES)
        elif op == "delete":
            if isinstance(cfg.get(sec), dict):
                cfg[sec].pop(key, None)
        else:
            if not isinstance(cfg.get(sec), dict):
                cfg[sec] = {}
            cfg[sec][key] = draw(VALUES)
    return toml(cfg)


def no_failures(kind: str) -> None:
    """The long run's verdict: it collected instead of stopping, so fail here if anything failed."""
    assert not FAILURES.get(kind), f"{len(FAILURES[kind])} {kind} inputs failed, first: {FAILURES[kind][0]}"


def test_fuzz_configs(tmp_path_factory):
    config_case(tmp_path_factory)
    no_failures("config")


@FUZZ
@given(text=configs(), command=st.sampled_from(["simulate", "simulate-nogd", "train"]))
def config_case(tmp_path_factory, text, command):
    d = tmp_path_factory.mktemp("cfg")
    (d / "c.toml").write_text(text, encoding="utf-8", errors="surrogatepass")
    argv = [command.split("-")[0], "--config", str(d / "c.toml"), "--out", str(d / "out"), *BUDGET]
    if command == "simulate-nogd":
        argv.append("--no-gd")
    code, _, err, crash, secs = run_cli(argv)
    verdict("config", text, cli_failure(code, err, crash), secs, code in (0, 1))


# --- replay files -----------------------------------------------------------------------------

def _base_records() -> list[dict[str, Any]]:
    from cdyn.claims._replay import _draw

    from cdyn import claims
    out = []
    for cid in ("C5-false", "C8-false", "C5-thin-false", "C7-false"):
        inst = _draw(claims.get_claim(cid), 1)[0]
        out.append({"claim": cid, "instance": json.loads(json.dumps(inst)), "margin": -1.0, "seed": 0})
    return out


BASES = _base_records()
JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
                              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6)),
                    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=6), kids,
                                                                                       max_size=4)), max_leaves=12)


def to_json(v: Any) -> str:
    """JSON text, NaN/Infinity included (the reader must refuse them), `Deep` nesting written flat."""
    if isinstance(v, Deep):
        return "[" * v.depth + to_json(v.leaf) + "]" * v.depth
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {to_json(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(to_json(x) for x in v) + "]"
    return json.dumps(v, allow_nan=True)


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, path + (i,))
    return out


@st.composite
def replay_texts(draw: Any) -> str:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.text(max_size=300))
    if kind == 1:
        return to_json(draw(JSON))
    rec = json.loads(json.dumps(draw(st.sampled_from(BASES))))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(rec)[1:]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = rec
        for p in path[:-1]:
            parent = parent[p]
        op = draw(st.sampled_from(["set", "set", "scale", "delete", "add"]))
        old = parent[path[-1]]
        if op == "delete":
            del parent[path[-1]]
        elif op == "add" and isinstance(old, dict):
            old[draw(st.text(max_size=6))] = draw(JSON)
        elif op == "scale" and isinstance(old, (int, float)) and not isinstance(old, bool):
            parent[path[-1]] = type(old)(old * draw(st.sampled_from([-1, 0, 2, 10, 1000, 10**6])))
        else:
            parent[path[-1]] = draw(st.one_of(JSON, VALUES))
    return to_json(rec)


def test_fuzz_replay_files(tmp_path_factory):
    replay_case(tmp_path_factory)
    no_failures("replay")


@FUZZ
@given(text=replay_texts())
def replay_case(tmp_path_factory, text):
    f = tmp_path_factory.mktemp("replay") / "cx.json"
    f.write_text(text, encoding="utf-8", errors="surrogatepass")
    code, _, err, crash, secs = run_cli(["verify", *BUDGET, "--replay", str(f)])
    prefix = "error: " if '"plugin"' in text else "error: replay: "
    verdict("replay", text, cli_failure(code, err, crash, prefix), secs, code in (0, 1))


# --- API arguments ----------------------------------------------------------------------------

def _ok_problem() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {"A": rng.standard_normal((4, 2)), "B": rng.standard_normal((4, 2)), "A_xi": 0.1 * np.eye(4),
            "B_xi": 0.1 * np.eye(4), "Sigma_z": None, "m": 2, "lam": 1.0, "mu": 0.0}


ARRAYS = st.one_of(
    st.sampled_from([np.zeros((0, 2)), np.ones(3), np.ones((4, 3)), np.ones((2, 2, 2)), np.full((4, 2), np.nan),
                     np.full((4, 2), np.inf), np.full((4, 2), 1e300), np.ones((4, 2)) * 1j, np.eye(4) * -1.0,
                     np.array([["a", "b"]]), np.ones((4, 2), dtype=object)]),
    VALUES,
)
CALLS = {
    "Problem": ["A", "B", "A_xi", "B_xi", "Sigma_z", "m", "lam", "mu", "params"],
    "random_problem": ["spectrum_A", "spectrum_B", "d_A", "d_B", "m", "noise_A", "noise_B", "lam", "mu",
                       "shared_right", "seed"],
    "integrate": ["W_A0", "W_B0", "t_end", "terms", "method", "rtol", "atol", "n_points", "max_norm", "grad_tol",
                  "path", "threads", "eq_tol"],
    "gradient_descent": ["W_A0", "W_B0", "eta", "t_end", "terms", "n_points", "max_norm", "path"],
}


def _call(fn: str, field: str, value: Any) -> Any:
    if fn == "Problem":
        return numerics.Problem(**{**_ok_problem(), field: value})
    if fn == "random_problem":
        kw = {"spectrum_A": [2.0, 1.0], "spectrum_B": [1.5, 0.8], "d_A": 4, "d_B": 4, "m": 2, "noise_A": 0.1,
              "noise_B": 0.1}
        return numerics.random_problem(**{**kw, field: value})
    p = numerics.Problem(**_ok_problem())
    W_A0, W_B0 = numerics.random_init(p, scale=1e-2, seed=0)
    kw: dict[str, Any] = {"W_A0": W_A0, "W_B0": W_B0, "t_end": 2.0, "n_points": 21}
    if fn == "gradient_descent":
        kw["eta"] = 0.05
    kw[field] = value
    if fn == "integrate":
        return numerics.integrate(p, kw.pop("W_A0"), kw.pop("W_B0"), kw.pop("t_end"), **kw)
    return numerics.gradient_descent(p, kw.pop("W_A0"), kw.pop("W_B0"), kw.pop("eta"), kw.pop("t_end"), **kw)


@st.composite
def api_cases(draw: Any) -> tuple[str, str, Any]:
    fn = draw(st.sampled_from(sorted(CALLS)))
    field = draw(st.sampled_from(CALLS[fn]))
    return fn, field, draw(ARRAYS)


def test_fuzz_api_arguments():
    api_case()
    no_failures("api")


@FUZZ
@given(case=api_cases())
def api_case(case):
    fn, field, value = case
    what = f"{fn}({field}={value!r})"  # before a Deep value becomes a list too deep to repr
    if isinstance(value, Deep):  # a real nested list for the API
        value = nested_list(value)
    t0 = time.perf_counter()
    failure, ran = None, False
    try:
        with numerics.budget(max_memory=256 * 2**20, max_steps=2e4, max_nfev=2e4):
            _call(fn, field, value)
        ran = True
    except (ValueError, TypeError) as e:
        msg = str(e)
        if field not in msg or "\n" in msg.strip():
            failure = f"{type(e).__name__} does not name {field!r} in one line: {msg[:300]!r}"
    except Exception as e:  # noqa: BLE001 - the finding
        failure = f"{type(e).__name__}: {str(e)[:200]}"
    verdict("api", what, failure, time.perf_counter() - t0, ran)


# --- what the long run found, pinned --------------------------------------------------------

def test_deeply_nested_config_is_one_line(tmp_path):
    # tomllib recurses per nested array: 3000 levels were a RecursionError traceback.
    (tmp_path / "c.toml").write_text("[init]\nscale = " + "[" * 3000 + "0" + "]" * 3000 + "\n")
    code, _, err, crash, _ = run_cli(["simulate", "--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "o")])
    assert crash is None and code == 2 and err == "error: config: c.toml nests arrays or tables too deeply to parse\n"


def test_hostile_replay_keys_are_escaped(tmp_path):
    # A key with control characters (\x1e, \x0c split lines) is quoted and escaped in the message.
    f = tmp_path / "cx.json"
    inst = json.loads(json.dumps(BASES[0]["instance"]))
    inst["\x1e\x0c"] = 1
    f.write_text(json.dumps({"claim": BASES[0]["claim"], "instance": inst}))
    code, _, err, crash, _ = run_cli(["verify", "--replay", str(f)])
    assert crash is None and code == 2
    assert err.startswith('error: replay: instance["\\u001e\\f"]: unknown key') and err.count("\n") == 1
