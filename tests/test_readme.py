"""The README's code runs: every ```python block in a fresh process, every ```toml block parses and validates.

Each Python block runs in its own interpreter (a fork of one that has imported NumPy, SciPy, SymPy and
Hypothesis but nothing of this project: `helpers.ForkServer`), in a temporary directory, so nothing it
registers or writes leaks into the test process, the repo or the next block.
```bash blocks are covered by the CLI tests and `.ci/run`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from cdyn import _config

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def blocks(lang: str) -> list[tuple[str, str]]:
    """(heading above it, code) for every fenced block of `lang`, in order."""
    out, heading, fence = [], "", None
    for line in README.read_text(encoding="utf-8").splitlines():
        if fence is None:
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            m = re.fullmatch(r"```(\w*)\s*", line)
            if m:
                fence = (m.group(1), [])
        elif line.startswith("```"):
            if fence[0] == lang:
                out.append((heading, "\n".join(fence[1]) + "\n"))
            fence = None
        else:
            fence[1].append(line)
    assert fence is None, "README.md has an unclosed code fence"
    return out


PYTHON = blocks("python")
TOML = blocks("toml")


def test_readme_has_the_blocks_we_run() -> None:
    headings = [h for h, _ in PYTHON]
    assert any("Python API" in h for h in headings)
    assert any("Adding a loss term" in h for h in headings)
    assert any("Write your own claim" in h for h in headings)


@pytest.fixture(scope="module")
def fresh():
    """Fresh interpreters, forked from one that has imported the third-party libraries only."""
    from tests.helpers import ForkServer

    server = ForkServer(_env())
    yield server
    server.close()


def test_the_fresh_interpreters_report_failures(fresh, tmp_path: Path) -> None:
    """What `test_python_block_runs` relies on: an exception, sys.exit and a missing import fail the run,
    and a block sees no project module nor any name it did not import."""
    assert fresh.run("print('hi')", tmp_path).returncode == 0
    failed = fresh.run("raise ValueError('boom')", tmp_path)
    assert failed.returncode == 1 and "ValueError: boom" in failed.stderr
    assert fresh.run("import sys; sys.exit(3)", tmp_path).returncode == 3
    assert fresh.run("np.zeros(2)", tmp_path).returncode == 1  # `np` not imported by this code
    proc = fresh.run("import sys; print(sorted(m for m in sys.modules if m.split('.')[0] in ('cdyn', 'tests')))",
                     tmp_path)
    assert proc.returncode == 0 and proc.stdout == "[]\n", proc


@pytest.mark.parametrize("heading,code", PYTHON, ids=[f"{i}-{h[:30]}" for i, (h, _) in enumerate(PYTHON)])
def test_python_block_runs(heading: str, code: str, tmp_path: Path, fresh) -> None:
    proc = fresh.run(code, tmp_path)
    assert proc.returncode == 0, f"README block under {heading!r} failed:\n{proc.stderr[-3000:]}"


@pytest.mark.parametrize("heading,code", TOML, ids=[f"{i}-{h[:30]}" for i, (h, _) in enumerate(TOML)])
def test_toml_block_is_valid(heading: str, code: str) -> None:
    doc = tomllib.loads(code)
    if "project" in doc:  # a packaging example: the entry-point group must be the one cdyn scans
        assert set(doc["project"]["entry-points"]) == {"cdyn.plugins"}
        for value in doc["project"]["entry-points"]["cdyn.plugins"].values():
            assert re.fullmatch(r"[\w.]+(:[\w.]+)?", value)
    else:  # a cdyn config: every key known, every value of the right type (raises otherwise)
        _config.validate(doc)


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    # The blocks import the project as an installed user would, plus the repo for a plain checkout.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env
