r"""Replay files are untrusted input: bounded, schema-checked and run under a budget.

A counterexample JSON (`cdyn verify --replay FILE`, `claims.replay(record)`) may have been
edited by hand or by a fuzzer. Before its check runs, a record goes through four gates,
each of which fails with one `ValueError` line, `replay: <field>: <what is wrong>`:

1. **Size and depth before parsing.** At most `MAX_BYTES` (1 MiB) and `MAX_DEPTH` nested
   `[`/`{` (strings are skipped when counting), so 200,000 nested brackets are refused
   before `json` recurses into them. `NaN`, `Infinity` and numbers that overflow a float
   are refused while parsing.
2. **The record schema** (`RECORD_SCHEMA`, JSON Schema checked by `jsonschema`): a claim id,
   an instance object, a margin that is a number or `"nan"`/`"inf"`/`"-inf"`, ...
3. **The claim's instance schema** (`claims._replay_schema`): exactly what a claim's `Space`
   builds from a point of its box, or else the schema inferred from instances its own
   strategy draws (keys, JSON types, minimum lengths, signs); every number is finite.
4. **The check under the resource budget** (`numerics.budget`, plus an address-space cap
   of the memory budget on Linux, so an allocation that slipped through fails at once as
   a `MemoryError` rather than paging the machine). Any exception of the check becomes one
   line: a `KeyError` names the missing key, a `ValueError` from the numerics keeps its own
   field name, anything else names the exception.
"""

from __future__ import annotations

import json
import math
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ._claim import CheckResult, Claim, Instance
from ._replay_schema import (  # noqa: F401 - re-exported for the engine and tests
    INFER_EXAMPLES, RECORD_SCHEMA, ReplayError, _draw, _path, check_schema, infer_schema, instance_schema,
    validate_instance,
)

#: Largest replay file read, in bytes.
MAX_BYTES = 1 << 20
#: Deepest nesting of `[` / `{` accepted (a saved record nests about 5 deep).
MAX_DEPTH = 64


# --- 1. bytes -> JSON ------------------------------------------------------------------------

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def nesting_depth(data: bytes) -> int:
    """Deepest bracket nesting of JSON text, counted without parsing (string contents skipped)."""
    code = np.frombuffer(_STRING.sub(b'""', data), dtype=np.uint8)
    step = (np.isin(code, (ord("["), ord("{"))).astype(np.int64)
            - np.isin(code, (ord("]"), ord("}"))).astype(np.int64))
    return int(np.cumsum(step).max()) if step.size else 0


def _finite_float(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"number {text[:20]!r} overflows a float")
    return x


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a finite number (JSON has no NaN or Infinity)")


def parse_record(data: bytes | str, name: str = "the record") -> dict[str, Any]:
    """Bytes of a replay file -> the record dict, checked for size, depth, syntax and schema."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if len(data) > MAX_BYTES:
        raise ReplayError(name, f"is {len(data)} bytes, above the limit of {MAX_BYTES} for a counterexample")
    depth = nesting_depth(data)
    if depth > MAX_DEPTH:
        raise ReplayError(name, f"nests {depth} deep, above the limit of {MAX_DEPTH}")
    try:
        record = json.loads(data.decode("utf-8"), parse_float=_finite_float, parse_constant=_no_constant)
    except UnicodeDecodeError as err:
        raise ReplayError(name, f"is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ReplayError(name, f"is not a JSON counterexample ({err.msg} at line {err.lineno} column {err.colno})") from None
    except (ValueError, RecursionError) as err:  # NaN, 1e999, ints beyond Python's digit limit
        raise ReplayError(name, f"is not a JSON counterexample ({str(err).splitlines()[0][:200]})") from None
    check_schema(record, RECORD_SCHEMA, "")
    return record


def load_record(path: Path) -> dict[str, Any]:
    """Read and parse a replay file; at most `MAX_BYTES + 1` bytes are ever read."""
    path = Path(path)
    if not path.is_file():
        raise ReplayError(str(path), "no such file (or not a regular file)")
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ReplayError(path.name, f"is {size} bytes, above the limit of {MAX_BYTES} for a counterexample")
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)  # never more, even if the file grows meanwhile
    except OSError as err:
        raise ReplayError(str(path), f"cannot be read ({err.strerror or err})") from None
    return parse_record(data, path.name)


def check_tree(value: Any, prefix: str = "record", strict: bool = True) -> None:
    """At most `MAX_DEPTH` deep; `strict`: JSON types only, finite floats and string keys too.

    For records built in Python (a file has passed `parse_record`). Iterative, so a deep
    structure cannot exhaust the stack (the schema validators recurse).
    """
    stack: list[tuple[Any, str, int]] = [(value, prefix, 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ReplayError(path, f"nests deeper than the limit of {MAX_DEPTH}")
        if isinstance(node, dict):
            for k, v in node.items():
                if strict and not isinstance(k, str):
                    raise ReplayError(path, f"has a key {k!r} that is not a string")
                stack.append((v, f"{path}.{k}", depth + 1))
        elif isinstance(node, (list, tuple)):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node))
        elif not strict:
            continue
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise ReplayError(path, f"must be a finite number, got {node}")
        elif not (node is None or isinstance(node, (bool, int, str))):
            raise ReplayError(path, f"must be a JSON value, got {type(node).__name__}")


# --- 2./3. schemas ----------------------------------------------------------------------------

# --- 4. the check under the budget ------------------------------------------------------------

@contextmanager
def _address_cap(extra: float) -> Iterator[None]:
    """Cap the address space at its current size + `extra` bytes (Linux; a no-op elsewhere)."""
    try:
        import resource

        with open("/proc/self/statm") as fh:
            current = int(fh.read().split()[0]) * resource.getpagesize()
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        yield
        return
    cap = int(current + extra)
    if (soft != resource.RLIM_INFINITY and soft <= cap) or (hard != resource.RLIM_INFINITY and cap > hard):
        yield
        return
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def guarded_check(claim: Claim, instance: Instance) -> CheckResult:
    """Run `claim.check(instance)` under the numerics budget; any failure is one `ReplayError` line."""
    from cdyn.numerics import fmt_bytes
    from cdyn.numerics._budget import limits

    memory, _ = limits()
    try:
        with _address_cap(memory + 2 * 2.0**30):  # + room for the solver's own workspace
            res = claim.check(instance)
    except MemoryError:
        raise ReplayError("instance", f"the check needs more memory than the budget of {fmt_bytes(memory)} "
                                      "(raise --max-memory only if the machine has it)") from None
    except KeyError as err:
        raise ReplayError(_path("instance", [str(err.args[0]) if err.args else "?"]), "missing key the check needs") from None
    except (IndexError, TypeError) as err:
        raise ReplayError("instance", f"has the wrong shape or type for {claim.id}: "
                                      f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}") from None
    except ReplayError:
        raise
    except ValueError as err:
        raise ReplayError("instance", str(err).splitlines()[0][:300] if str(err) else type(err).__name__) from None
    except Exception as err:  # noqa: BLE001 - an edited instance may break a check anywhere
        raise ReplayError("instance", f"the check of {claim.id} raised {type(err).__name__}: "
                                      f"{str(err).splitlines()[0][:200] if str(err) else ''}") from None
    if not isinstance(res, CheckResult):
        raise ReplayError("instance", f"the check of {claim.id} returned {type(res).__name__}, not a CheckResult")
    return res
