"""A small JSON Schema checker for the subset of draft 2020-12 the plan schema uses.

``jsonschema`` is not a dependency of this project; this covers exactly the keywords
``strangler_proxy.plan.schema`` emits and fails loudly on any other keyword, so the
schema cannot silently grow beyond what the tests check.
"""

from __future__ import annotations

import re
from typing import Any

_IGNORED = {"$schema", "$id", "title", "description"}
_KNOWN = _IGNORED | {
    "type",
    "properties",
    "additionalProperties",
    "required",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "minItems",
    "minLength",
    "items",
    "pattern",
    "oneOf",
    "not",
    "propertyNames",
}


def _is_type(value: Any, name: str) -> bool:
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":
        return (
            not isinstance(value, bool)
            and isinstance(value, int | float)
            and float(value).is_integer()
        )
    if name == "number":
        return not isinstance(value, bool) and isinstance(value, int | float)
    if name == "string":
        return isinstance(value, str)
    if name == "array":
        return isinstance(value, list)
    if name == "object":
        return isinstance(value, dict)
    raise AssertionError(f"unknown type {name}")


def _json_eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(type(a) is type(b) or (_is_type(a, "number") and _is_type(b, "number"))) and a == b


def errors(schema: dict[str, Any], value: Any, path: str = "$") -> list[str]:
    unknown = set(schema) - _KNOWN
    assert not unknown, f"schema keyword(s) not supported by the checker: {unknown}"
    out: list[str] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, t) for t in types):
            return [f"{path}: not {types}"]
    if "const" in schema and not _json_eq(value, schema["const"]):
        out.append(f"{path}: != {schema['const']!r}")
    if "enum" in schema and not any(_json_eq(value, e) for e in schema["enum"]):
        out.append(f"{path}: not in {schema['enum']!r}")
    if _is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{path}: < minimum")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{path}: > maximum")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            out.append(f"{path}: <= exclusiveMinimum")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.append(f"{path}: too short")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{path}: does not match {schema['pattern']}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            out.append(f"{path}: too few items")
        if "items" in schema:
            for i, item in enumerate(value):
                out += errors(schema["items"], item, f"{path}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{path}: missing {key}")
        for key, item in value.items():
            if "propertyNames" in schema:
                out += errors(schema["propertyNames"], key, f"{path}.<{key}>")
            if key in props:
                out += errors(props[key], item, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                out.append(f"{path}: unexpected {key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                out += errors(schema["additionalProperties"], item, f"{path}.{key}")
    if "not" in schema and not errors(schema["not"], value, path):
        out.append(f"{path}: matches a forbidden schema")
    if "oneOf" in schema:
        passing = [s for s in schema["oneOf"] if not errors(s, value, path)]
        if len(passing) != 1:
            out.append(f"{path}: matches {len(passing)} of oneOf")
    return out
