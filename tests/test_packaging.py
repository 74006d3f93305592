"""Packaging: `cdyn --version` is the installed version, the LICENSE is the one pyproject names,
and every package ships its `py.typed` marker (checked in a wheel built from the tree)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from cdyn.cli import main

ROOT = Path(__file__).resolve().parent.parent
# Where each folder lands in a build: one `cdyn` namespace, no generic top-level names.
PACKAGES = {"theory": "cdyn/theory", "numerics": "cdyn/numerics", "claims": "cdyn/claims", "cdyn": "cdyn"}


def test_version_is_the_installed_distribution_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"cdyn (contrastive-dynamics) {version('contrastive-dynamics')}\n"


def test_license_matches_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["license"]["text"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_build_ships_py_typed_in_every_package_and_the_license(tmp_path):
    """setuptools' own build step (what a wheel is made of), run on the tree into tmp_path."""
    pytest.importorskip("setuptools", reason="the build backend is setuptools")
    proc = subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q",
                           "egg_info", "--egg-base", str(tmp_path), "build_py", "--build-lib", str(tmp_path / "lib")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for folder, target in PACKAGES.items():
        assert (tmp_path / "lib" / target / "py.typed").is_file(), target
        assert {p.name for p in (ROOT / folder).glob("*.py")} <= {p.name for p in (tmp_path / "lib" / target).glob("*.py")}
    top_level = {p.name for p in (tmp_path / "lib").iterdir()}
    assert top_level == {"cdyn"}, top_level
    sources = (tmp_path / "contrastive_dynamics.egg-info" / "SOURCES.txt").read_text().split()
    assert "LICENSE" in sources


def test_installed_namespace_is_cdyn_only(tmp_path):
    """Outside the source tree, `cdyn.theory` etc. import and the bare names `theory`, `numerics`, `claims` do not."""
    code = ("import importlib.util as u, cdyn.theory, cdyn.numerics, cdyn.claims\n"
            "print([u.find_spec(n) is None for n in ('theory', 'numerics', 'claims')])")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[True, True, True]"


def test_no_module_imports_the_bare_folder_names():
    """The repository root is on sys.path under pytest, so a stray `import theory` would pass here and
    fail for every installed user: no file of the project may import the folders by their bare names."""
    import ast
    bare = {"theory", "numerics", "claims"}
    offenders = []
    for path in sorted(ROOT.glob("*/*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}" for n in names if n.split(".")[0] in bare]
    assert offenders == []
