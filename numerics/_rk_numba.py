r"""The `numba` backend's compiled right-hand side: generated NumPy code recompiled by numba.

The code generator (`_compile`) emits a setup function, run once per problem in Python, and an
inner function of the state. Here the inner function's lines become
`rhs(y, out, consts, shp)` of signature `_rk_rhs_helpers.RHS_SIG`: the state blocks are reshaped
views of the flat $y$, the values the setup computed (the inner function's closure) are
packed into the flat array `consts`, and the outputs are written into `out`; `shp` holds the
offsets and shapes of both. Two rewrites, both exact: `A @ B` becomes `_mm(A, B)` (numba's
`@` took tens of seconds to compile per layout pair here) and `np.einsum('ij,ji->', P, R)`,
i.e. $\operatorname{tr}(PR)$, becomes `_tr2(P, R)` (no `einsum` in numba).

That function is written as a real module file in a cache directory (`$CDYN_CACHE_DIR`, else
`$XDG_CACHE_HOME/cdyn/numba`, else `~/.cache/cdyn/numba`) named by a hash of its source, so
numba's on-disk cache applies: a right-hand side is compiled once per machine, and a new
process only loads it. The DOP853 loop (`_rk_kernels.segment`) takes it as a first-class
function and is compiled once for all of them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Callable

import numpy as np

from ._compiled_expr import CompiledExpr

_modules: dict[str, ModuleType] = {}
_HEADER = ("import numpy as np\nfrom numba import njit\n"
           "from cdyn.numerics._rk_rhs_helpers import RHS_SIG, _add, _logdet, _mm, _put, _sc, _tr2  # noqa: F401\n\n\n")
# Matrix lines of the generator (`_compile._Emitter`): a product `t = P @ R`, a scaling `t = c * P`
# and a sum `t = P + R + ...`. Scalar arithmetic is always parenthesised there, so it never matches.
_PRODUCT = re.compile(r"^(\w+) = ([\w.]+) @ ([\w.]+)$")
_SCALE = re.compile(r"^(\w+) = ([\w.+-]+) \* ([\w.]+)$")
_SUM = re.compile(r"^(\w+) = ([\w.]+(?: \+ [\w.]+)+)$")


def _rewrite(line: str) -> str:
    line = line.replace("np.einsum('ij,ji->', ", "_tr2(")
    line = _PRODUCT.sub(r"\1 = _mm(\2, \3)", line)
    line = _SCALE.sub(r"\1 = _sc(\2, \3)", line)
    m = _SUM.match(line)
    if m:
        parts = m.group(2).split(" + ")
        expr = parts[0]
        for p in parts[1:]:
            expr = f"_add({expr}, {p})"
        line = f"{m.group(1)} = {expr}"
    return line


class NumbaUnavailable(ValueError):
    """The numba backend cannot run this flow (numba missing, or code it cannot compile)."""


def cache_dir() -> Path:
    base = os.environ.get("CDYN_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "cdyn" / "numba"


def _inner(code: CompiledExpr) -> tuple[list[str], list[str], list[str]]:
    """(state argument names, body lines, output names) of the generated inner function."""
    lines = code.source.split("\n")
    start = next(i for i, ln in enumerate(lines) if ln.startswith("    def "))
    args = [a.strip() for a in lines[start].split("(", 1)[1].rsplit(")", 1)[0].split(",") if a.strip()]
    body, outs = [], []
    for ln in lines[start + 1:]:
        if ln.startswith("        return ("):
            outs = [o.strip() for o in ln.strip()[len("return ("):].rstrip(")").split(",") if o.strip()]
            break
        body.append(ln[8:])
    return args, body, outs


def rhs_source(code: CompiledExpr, consts: tuple) -> str:
    """The numba `rhs(y, out, consts, shp)` for a compiled flow. `shp[4k:4k+4]` = (start, stop, rows,
    cols) of state block k, in the order of the generated function's arguments (the outputs follow
    it); then, for each constant `(name, value)`, its (start, stop, rows, cols) in the flat `consts`."""
    args, body, outs = _inner(code)
    if len(outs) != len(args):
        raise NumbaUnavailable(f"backend numba: {len(outs)} outputs for {len(args)} state blocks")
    src = ["@njit(RHS_SIG, cache=True)", "def rhs(y, out, consts, shp):"]
    for k, a in enumerate(args):
        i = 4 * k
        src.append(f"    {a} = y[shp[{i}]:shp[{i + 1}]].reshape((shp[{i + 2}], shp[{i + 3}]))")
    for k, (name, value) in enumerate(consts):
        i = 4 * (len(args) + k)
        src.append(f"    {name} = consts[shp[{i}]]" if np.ndim(value) == 0 else
                   f"    {name} = consts[shp[{i}]:shp[{i + 1}]].reshape((shp[{i + 2}], shp[{i + 3}]))")
    src += ["    " + _rewrite(ln) for ln in body]
    for k, o in enumerate(outs):
        i = 4 * k
        src.append(f"    _put(out, shp[{i}], {o})")
    return "\n".join(src) + "\n"


@lru_cache(maxsize=1)
def _helpers_hash() -> str:
    """sha256 of `_rk_rhs_helpers.py`: numba's cache checks only a generated rhs's own file, not the helpers
    compiled into it, so their source is part of the generated module's key (read once a process)."""
    return hashlib.sha256(Path(__file__).with_name("_rk_rhs_helpers.py").read_bytes()).hexdigest()


def _load(src: str) -> ModuleType:
    import numba

    text = _HEADER + src
    key = hashlib.sha256(f"{numba.__version__}\n{np.__version__}\n{_helpers_hash()}\n{text}".encode()).hexdigest()[:24]
    folder = cache_dir()
    mod = _modules.get(f"{folder}/{key}")
    if mod is not None:
        return mod
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"cdyn_rk_{key}.py"
    if not path.exists() or path.read_text() != text:
        # Written under a temporary name and renamed: parallel workers never import half a file.
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    name = f"cdyn_rk_{key}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # numba's cache locates functions through their module
    spec.loader.exec_module(mod)
    _modules[f"{folder}/{key}"] = mod
    return mod


def _const(name: str, v: object) -> np.ndarray:
    a = np.asarray(v)
    if a.ndim not in (0, 2) or a.dtype.kind not in "biuf":
        raise NumbaUnavailable(f"backend numba: the constant {name} of the flow is not a real scalar or matrix")
    return np.array(a, dtype=float, order="C")


def compile_rhs(code: CompiledExpr, bound: Callable, blocks: list[tuple[int, int]]) -> tuple[Callable, np.ndarray,
                                                                                            np.ndarray]:
    """`(rhs, consts, shp)` for the bound inner function `bound` of `code`; `blocks` are the
    state blocks' shapes, laid out one after the other in the flat state."""
    try:
        import numba  # noqa: F401
    except ImportError as err:  # pragma: no cover - numba is installed with the toolkit's venv
        raise NumbaUnavailable("backend: numba is not installed (pip install numba)") from err
    named = tuple((name, _const(name, c.cell_contents))
                  for name, c in zip(bound.__code__.co_freevars, bound.__closure__ or ()))
    shp, o = [], 0
    for r, c in blocks:
        shp += [o, o + r * c, r, c]
        o += r * c
    o = 0
    for _, v in named:
        r, c = v.shape if v.ndim else (0, 0)
        shp += [o, o + v.size, r, c]
        o += v.size
    flat = np.concatenate([v.ravel() for _, v in named]) if named else np.zeros(1)
    src = rhs_source(code, named)
    try:
        fn = _load(src).rhs
    except Exception as err:  # a construct numba cannot type (e.g. a user term's function)
        first = str(err).strip().split("\n")[0][:200]
        raise NumbaUnavailable(f"backend numba: cannot compile this flow ({type(err).__name__}: {first})") from err
    return fn, flat, np.array(shp, dtype=np.int64)
