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
PACKAGES = ("theory", "numerics", "claims", "cdyn")


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
    for p in PACKAGES:
        assert (tmp_path / "lib" / p / "py.typed").is_file(), p
    sources = (tmp_path / "contrastive_dynamics.egg-info" / "SOURCES.txt").read_text().split()
    assert "LICENSE" in sources
