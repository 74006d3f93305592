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
3. **The claim's instance schema.** A claim with a `Space` admits exactly the instances
   `space.instance(params)` builds from a point of its box: the point must lie in the box
   and every built field must equal the stored one. For any other claim the schema is
   inferred from `INFER_EXAMPLES` instances its own strategy draws (derandomized): the keys
   every draw has are required, no other key is allowed, each field has the JSON type of
   the draws, lists are at least as long as the shortest draw, a field never negative in the
   draws must be $\ge 0$, and every number is finite.
4. **The check under the resource budget** (`numerics.budget`, plus an address-space cap
   of the memory budget on Linux, so an allocation that slipped through fails at once as
   a `MemoryError` rather than paging the machine). Any exception of the check becomes one
   line; a `KeyError`, `IndexError` or `TypeError` names the key path it points at.
"""

from __future__ import annotations

import json
import math
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import numpy as np

from ._claim import CheckResult, Claim, Instance

#: Largest replay file read, in bytes.
MAX_BYTES = 1 << 20
#: Deepest nesting of `[` / `{` accepted (a saved record nests about 5 deep).
MAX_DEPTH = 64
#: Instances drawn from a claim's strategy to infer its instance schema.
INFER_EXAMPLES = 150
_F64 = 1.7976931348623157e308
_I64 = 2**63

_MARGIN = {"anyOf": [{"type": "number", "minimum": -_F64, "maximum": _F64},
                     {"enum": ["nan", "inf", "-inf"]}]}
RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["claim", "instance"],
    "properties": {
        "claim": {"type": "string", "minLength": 1, "maxLength": 200},
        "instance": {"type": "object"},
        "margin": _MARGIN,
        "seed": {"type": "integer", "minimum": 0, "maximum": _I64},
        "expected": {"type": "boolean"},
        "title": {"type": "string"}, "statement": {"type": "string"},
        "hypotheses": {"type": "array", "items": {"type": "string"}},
        "reason": {"type": ["string", "null"]},
        "details": {"type": "object"},
        "hypothesis_version": {"type": "string"},
        "plugin": {"type": ["object", "null"]},
        "found_by": {"type": "string"},
    },
}


class ReplayError(ValueError):
    """A replay record that cannot be checked; the message is `replay: <field>: <what>`."""

    def __init__(self, field: str, what: str) -> None:
        super().__init__(f"replay: {field}: {what}")


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

def _path(prefix: str, parts: Any) -> str:
    out = prefix
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "record"


def _short(x: Any) -> str:
    text = json.dumps(x) if _json_type(x) != "object" or len(x) < 20 else f"an object of {len(x)} keys"
    return text if len(text) <= 40 else text[:37] + "..."


def _what(e: jsonschema.ValidationError) -> tuple[list[Any], str]:
    """(extra path parts, message) for one jsonschema error, in the words of a config error."""
    v, x, limit = e.validator, e.instance, e.validator_value
    if v == "required":
        return [next(k for k in limit if k not in x)], "missing key"
    if v == "additionalProperties":
        extra = sorted(k for k in x if k not in e.schema.get("properties", {}))
        return [extra[0]], f"unknown key (known: {', '.join(sorted(e.schema.get('properties', {})))})"
    if v == "type":
        want = " or ".join(limit) if isinstance(limit, list) else limit
        return [], f"must be of type {want}, got " + ("null" if x is None else f"{_json_type(x)} {_short(x)}")
    if v in ("minimum", "maximum"):
        return [], f"must be {'>=' if v == 'minimum' else '<='} {limit:g}, got {_short(x)}"
    if v == "minItems":
        return [], f"needs at least {limit} items, got {len(x)}"
    if v in ("minLength", "maxLength"):
        return [], f"must have {'at least' if v == 'minLength' else 'at most'} {limit} characters"
    if v == "anyOf" and e.schema is _MARGIN:
        return [], f"must be a number or \"nan\", \"inf\", \"-inf\", got {_short(x)}"
    return [], e.message if len(e.message) <= 200 else e.message[:200] + "..."


def check_schema(value: Any, schema: dict[str, Any], prefix: str) -> None:
    """Validate with jsonschema; the first error (by path) becomes a `ReplayError` naming its field."""
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(value),
                    key=lambda e: (len(e.absolute_path), [str(p) for p in e.absolute_path]))
    if errors:
        extra, what = _what(errors[0])
        raise ReplayError(_path(prefix, [*errors[0].absolute_path, *extra]), what)


def _json_type(x: Any) -> str:
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "boolean"
    if isinstance(x, int):
        return "integer"
    if isinstance(x, float):
        return "number"
    if isinstance(x, str):
        return "string"
    if isinstance(x, (list, tuple)):
        return "array"
    return "object"


def infer_schema(values: list[Any]) -> dict[str, Any]:
    """The JSON Schema of a field from the values the strategy drew for it (see the module doc)."""
    types = {_json_type(v) for v in values}
    if "number" in types:
        types.discard("integer")
    schema: dict[str, Any] = {"type": sorted(types) if len(types) > 1 else next(iter(types))}
    nums = [v for v in values if _json_type(v) in ("integer", "number")]
    if nums:
        bound = _I64 if types == {"integer"} else _F64
        schema["maximum"] = bound
        schema["minimum"] = 0 if min(nums) >= 0 else -bound
    objs = [v for v in values if isinstance(v, dict)]
    if objs:
        keys = sorted({k for o in objs for k in o})
        schema["properties"] = {k: infer_schema([o[k] for o in objs if k in o]) for k in keys}
        schema["required"] = [k for k in keys if all(k in o for o in objs)]
        schema["additionalProperties"] = False
    arrays = [v for v in values if isinstance(v, (list, tuple))]
    if arrays:
        schema["minItems"] = min(len(a) for a in arrays)
        items = [x for a in arrays for x in a]
        if items:
            schema["items"] = infer_schema(items)
    return schema


_schemas: dict[tuple[str, int], dict[str, Any]] = {}


def _draw(claim: Claim, n: int) -> list[Instance]:
    from hypothesis import HealthCheck, Phase, given, settings

    from ._isolation import isolated_constants

    drawn: list[Instance] = []

    @settings(max_examples=n, derandomize=True, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(claim.strategy())
    def collect(instance: Instance) -> None:
        drawn.append(json.loads(json.dumps(instance)))

    with isolated_constants():
        collect()
    return drawn


def instance_schema(claim: Claim) -> dict[str, Any]:
    """The inferred schema of a claim's instances (cached per claim object)."""
    key = (claim.id, id(claim.check))
    if key not in _schemas:
        _schemas[key] = infer_schema(_draw(claim, INFER_EXAMPLES))
    return _schemas[key]


def _check_space(claim: Claim, instance: Instance) -> None:
    space = claim.space
    assert space is not None
    params = instance.get("params")
    check_schema(params, {"type": "object", "required": space.names, "additionalProperties": False,
                          "properties": {p.name: {"type": "number", "minimum": p.lo, "maximum": p.hi}
                                         for p in space.params}}, "instance.params")
    built = json.loads(json.dumps(space.instance(params)))
    for k in sorted(set(built) | set(instance)):
        if k not in built:
            raise ReplayError(f"instance.{k}", f"unknown key (the claim's space builds {sorted(built)})")
        if k not in instance:
            raise ReplayError("instance", f"missing key {k!r}")
        if built[k] != instance[k]:
            raise ReplayError(f"instance.{k}", f"is not what the claim's space builds at instance.params "
                                               f"(expected {json.dumps(built[k])[:120]})")


def validate_instance(claim: Claim, instance: Any) -> Instance:
    """Raise a `ReplayError` naming the field unless `instance` is one the claim's strategy could build."""
    if not isinstance(instance, dict):
        raise ReplayError("instance", f"must be an object, got {_json_type(instance)}")
    if claim.space is not None:
        _check_space(claim, instance)
    else:
        check_schema(instance, instance_schema(claim), "instance")
    return instance


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
    from numerics import fmt_bytes
    from numerics._budget import limits

    memory, _ = limits()
    try:
        with _address_cap(memory + 2 * 2.0**30):  # + room for the solver's own workspace
            res = claim.check(instance)
    except MemoryError:
        raise ReplayError("instance", f"the check needs more memory than the budget of {fmt_bytes(memory)} "
                                      "(raise --max-memory only if the machine has it)") from None
    except KeyError as err:
        raise ReplayError(f"instance.{err.args[0] if err.args else '?'}", "missing key the check needs") from None
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
