r"""Schemas of a replay record and of each claim's instances (`claims._replay` runs them).

`RECORD_SCHEMA` is the counterexample JSON the engine writes. A claim's instance schema is
exact for a claim with a `Space` (the point must lie in the box and the instance must be what
the box builds there) and otherwise inferred from `INFER_EXAMPLES` instances drawn by the
claim's own strategy (derandomized): the keys every draw has are required, no other key is
allowed, each field has the JSON type of the draws, lists are at least as long as the shortest
draw, a field never negative in the draws must be $\ge 0$, numbers fit a float64 (integers an
int64). Every failure is a `ReplayError`, `replay: <field>: <what is wrong>`.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from ._claim import Claim, Instance

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


def _path(prefix: str, parts: Any) -> str:
    """`instance.init.seed`, `instance.a[1]`; a key that is not a plain name is quoted and escaped
    (`instance["\\u001e"]`), so a hostile key cannot break the error line."""
    out = prefix
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif str(p).isascii() and str(p).replace("_", "a").replace("-", "a").isalnum():
            out += f".{p}" if out else str(p)
        else:
            out += f"[{json.dumps(str(p))}]"
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
            raise ReplayError(_path("instance", [k]), f"unknown key (the claim's space builds {sorted(built)})")
        if k not in instance:
            raise ReplayError("instance", f"missing key {k!r}")
        if built[k] != instance[k]:
            raise ReplayError(_path("instance", [k]), f"is not what the claim's space builds at instance.params "
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
