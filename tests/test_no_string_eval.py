"""No string from a config, the command line or a JSON file can reach a parser of code.

The library never calls `eval` or `parse_expr`, and every `sympify` is `strict=True`
(which refuses strings). Checked on the syntax tree of every library module, so a new
call site cannot slip in unnoticed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import sympy as sp

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("theory", "numerics", "claims", "cdyn")


def _calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            yield name, node


@pytest.mark.parametrize("path", sorted(p for pkg in PACKAGES for p in (ROOT / pkg).glob("*.py")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_code_parser_is_called_on_data(path):
    for name, node in _calls(path):
        assert name not in ("eval", "parse_expr"), f"{path.name}:{node.lineno} calls {name}"
        if name == "sympify":
            strict = [k for k in node.keywords if k.arg == "strict"]
            assert strict and isinstance(strict[0].value, ast.Constant) and strict[0].value.value is True, (
                f"{path.name}:{node.lineno}: sympify without strict=True would parse a string")


def test_strict_sympify_refuses_strings():
    with pytest.raises(sp.SympifyError):
        sp.sympify("__import__('os').getcwd()", strict=True)
