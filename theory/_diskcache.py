r"""An on-disk cache of derivations: `dsolve`, `solve` and `simplify` results survive the process.

A fresh `cdyn verify` spends seconds re-deriving the same closed forms (THEORY §5–§6) that
the previous run derived. `disk_cached` stores a derivation's result as JSON, keyed on
everything that can change it:

$$\text{key} = \operatorname{sha256}\big(\text{format},\ \text{the bytes of every } \texttt{theory/*.py},\ \text{SymPy, mpmath and Python versions},\ \text{function and its file},\ \text{arguments},\ \text{the term registry}\big)$$

(the function's own file when it lives outside `theory/`, e.g. in `numerics`; the registry enters as the `srepr` of each registered term, so a plugin that replaces or adds
a term gets its own entries). A file is used only when it parses, names exactly this key and
decodes; anything else (stale, corrupt, another key) is ignored and rebuilt. Files are
written atomically (a temporary file renamed into place), so parallel processes never read
half a file.

**Structure, not just value.** The result must be the *same tree*, not an equal one: the
compiled code is printed from it, and `2(g_1 - g_k)` and `2g_1 - 2g_k` round differently.
Pickle rebuilds nodes through their evaluating constructors and loses such forms, so the
encoding here rebuilds each node unevaluated, and a result is stored only if its decoded copy
has the same `srepr` as the original (otherwise it is simply not cached).

**Safety.** Nothing is evaluated: the file names classes, which must be SymPy `Basic`
subclasses from `sympy.*` modules or dataclasses of `cdyn.theory`, and plain JSON values.

**Where.** `CDYN_CACHE_DIR` (`off` turns the cache off), else `$XDG_CACHE_HOME/cdyn`, else
`~/.cache/cdyn`; entries go to its `derivations/` folder. A folder that cannot be written
only costs the derivation.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import inspect
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import sympy as sp

#: Bump when the encoding changes.
FORMAT = 1
_THEORY_DIR = Path(__file__).resolve().parent


class _NotEncodable(Exception):
    """A value this cache does not store (the derivation then just runs every time)."""


def cache_dir() -> Path | None:
    """The folder of derivation entries, or None when `CDYN_CACHE_DIR=off`."""
    root = os.environ.get("CDYN_CACHE_DIR", "")
    if root.strip().lower() == "off":
        return None
    if not root:
        try:
            root = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cdyn")
        except (RuntimeError, KeyError):  # no home directory to put it in: no cache
            return None
    return Path(root) / "derivations"


@functools.lru_cache(maxsize=1)
def _sources_digest() -> str:
    h = hashlib.sha256()
    for path in sorted(_THEORY_DIR.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _registry_fingerprint() -> list[list[str]]:
    from ._terms import _REGISTRY

    return [[name, sp.srepr(t.expr), sp.srepr(t.weight), sp.srepr(t.per_sample)] for name, t in _REGISTRY.items()]


@functools.lru_cache(maxsize=None)
def _file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cache_key(name: str, args: tuple, source: str | None = None) -> str:
    """The sha256 key of `name(*args)` under the current sources, versions and term registry.

    `source`: the file defining the function when it is outside `theory/` (its bytes enter the key too).
    """
    import mpmath

    parts = {"format": FORMAT, "sources": _sources_digest(), "sympy": sp.__version__, "mpmath": mpmath.__version__,
             "python": sys.version, "function": name, "args": _encode(args), "terms": _registry_fingerprint(),
             "source": None if source is None else _file_digest(source)}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


# ------------------------------------------------------------------ encoding ---------
def _encode(v: Any) -> Any:
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return {"int": str(v)}
    if isinstance(v, tuple):
        return {"tuple": [_encode(x) for x in v]}
    if isinstance(v, list):
        return {"list": [_encode(x) for x in v]}
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            raise _NotEncodable("dict with non-string keys")
        return {"dict": [[k, _encode(x)] for k, x in v.items()]}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        cls = type(v)
        if not cls.__module__.startswith("cdyn.theory."):
            raise _NotEncodable(f"dataclass {cls.__qualname__} is not from cdyn.theory")
        return {"data": [cls.__module__, cls.__qualname__],
                "fields": [[f.name, _encode(getattr(v, f.name))] for f in dataclasses.fields(v) if f.init]}
    if isinstance(v, sp.Basic):
        return _encode_basic(v)
    raise _NotEncodable(type(v).__name__)


def _encode_basic(e: sp.Basic) -> Any:
    cls = type(e)
    if isinstance(e, sp.Dummy):  # its index could collide with a Dummy of this process
        raise _NotEncodable("Dummy")
    if cls is sp.Symbol:
        return {"symbol": [e.name, _assumptions(e)]}
    if isinstance(e, sp.core.symbol.Str):
        return {"str": e.name}
    if isinstance(e, sp.Integer):
        return {"integer": str(e.p)}
    if isinstance(e, sp.Rational):
        return {"rational": [str(e.p), str(e.q)]}
    if isinstance(e, sp.Float):
        sign, man, exp, bc = e._mpf_
        return {"float": [sign, str(man), str(exp), bc, e._prec]}
    if not e.args:
        if getattr(sp.S, cls.__name__, None) is e:  # a singleton: pi, E, oo, I, ...
            return {"singleton": cls.__name__}
        raise _NotEncodable(f"atom {cls.__name__}")
    if isinstance(e, sp.core.function.AppliedUndef):
        raise _NotEncodable("undefined function")
    return {"node": [cls.__module__, cls.__name__], "args": [_encode_basic(a) for a in e.args]}


def _assumptions(s: sp.Symbol) -> dict[str, bool]:
    return {k: bool(v) for k, v in s._assumptions_orig.items()}


def _sympy_class(where: Any) -> type:
    if not (isinstance(where, list) and len(where) == 2 and all(isinstance(w, str) for w in where)
            and where[0].startswith("sympy.")):
        raise ValueError(f"not a SymPy class: {where!r}")
    cls = getattr(importlib.import_module(where[0]), where[1])
    if not (isinstance(cls, type) and issubclass(cls, sp.Basic)):
        raise ValueError(f"not a SymPy class: {where!r}")
    return cls


def _flags(d: Any) -> dict[str, bool]:
    if not (isinstance(d, dict) and all(isinstance(k, str) and isinstance(v, bool) for k, v in d.items())):
        raise ValueError("bad assumptions")
    return d


def _decode(v: Any) -> Any:
    if v is None or isinstance(v, (bool, str)):
        return v
    if not (isinstance(v, dict) and len(v) in (1, 2)):
        raise ValueError("bad entry")
    (tag, x), = list(v.items())[:1]
    if tag == "int":
        return int(x)
    if tag in ("tuple", "list"):
        items = [_decode(i) for i in x]
        return tuple(items) if tag == "tuple" else items
    if tag == "dict":
        return {str(k): _decode(i) for k, i in x}
    if tag == "data":
        mod, qual = x
        if not (isinstance(mod, str) and mod.startswith("cdyn.theory.") and isinstance(qual, str)):
            raise ValueError("bad dataclass")
        cls = getattr(importlib.import_module(mod), qual)
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ValueError("bad dataclass")
        return cls(**{str(k): _decode(i) for k, i in v["fields"]})
    return _decode_basic(v)


def _decode_basic(v: Any) -> sp.Basic:
    (tag, x), = list(v.items())[:1]
    if tag == "symbol":
        return sp.Symbol(str(x[0]), **_flags(x[1]))
    if tag == "str":
        return sp.core.symbol.Str(str(x))
    if tag == "integer":
        return sp.Integer(int(x))
    if tag == "rational":
        return sp.Rational(int(x[0]), int(x[1]))
    if tag == "float":
        sign, man, exp, bc, prec = x
        return sp.Float._new((int(sign), int(man), int(exp), int(bc)), int(prec))
    if tag == "singleton":
        out = getattr(sp.S, str(x))
        if not isinstance(out, sp.Basic):
            raise ValueError("bad singleton")
        return out
    if tag == "node":
        cls = _sympy_class(x)
        args = [_decode_basic(a) for a in v["args"]]
        try:  # unevaluated: the stored tree, node for node
            return cls(*args, evaluate=False)
        except TypeError:
            return cls(*args)
    raise ValueError(f"bad tag {tag!r}")


def _same(a: Any, b: Any) -> bool:
    """Same type and, for SymPy objects, the same `srepr` (tree, symbol names and assumptions)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, sp.Basic):
        return sp.srepr(a) == sp.srepr(b)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a):
        return all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return a == b


# ------------------------------------------------------------------ the cache ---------
def load(folder: Path, key: str) -> tuple[bool, Any]:
    """`(True, value)` from a valid entry of `key`, else `(False, None)` (missing, corrupt, other key)."""
    try:
        record = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        if not (isinstance(record, dict) and record.get("key") == key and record.get("format") == FORMAT):
            return False, None
        return True, _decode(record["value"])
    except Exception:  # noqa: BLE001 -- any unreadable entry is a miss, and is rebuilt
        return False, None


def store(folder: Path, key: str, value: Any) -> bool:
    """Write `value` under `key` atomically if it round-trips to the same tree; whether it was written."""
    try:
        encoded = _encode(value)
        if not _same(_decode(json.loads(json.dumps(encoded))), value):
            return False
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"format": FORMAT, "key": key, "value": encoded}, fh)
            os.replace(tmp, folder / f"{key}.json")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True
    except (_NotEncodable, OSError, ValueError, TypeError):
        return False


def disk_cached(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Serve `fn(*args)` from the derivation cache; compute, store and return it on a miss.

    Arguments must be strings, integers, bools, None or tuples of them (anything else bypasses
    the cache); put `lru_cache` outside, so a process reads each entry once.
    """
    name = f"{fn.__module__}.{fn.__qualname__}"
    signature = inspect.signature(fn)
    # A derivation defined outside theory/ (e.g. numerics assembling theory's pieces): its own file
    # is part of what produces the result.
    path = Path(inspect.getsourcefile(fn) or "").resolve()
    source = None if path.parent == _THEORY_DIR else str(path)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        folder = cache_dir()
        if folder is None:
            return fn(*args, **kwargs)
        try:  # one key however the arguments are passed (positional, keyword, defaults)
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            key = cache_key(name, tuple(bound.arguments.items()), source)
        except (_NotEncodable, TypeError, OSError):
            return fn(*args, **kwargs)
        hit, value = load(folder, key)
        if hit:
            return value
        value = fn(*args, **kwargs)
        store(folder, key, value)
        return value

    wrapper.uncached = fn  # type: ignore[attr-defined]
    return wrapper


__all__ = ["FORMAT", "cache_dir", "cache_key", "disk_cached", "load", "store"]
