"""The plan's JSON Schema (draft 2020-12), for editors and other tools.

``strangle plan schema`` prints it; ``plan.schema.json`` next to this module is the
published copy (a test keeps it equal to :func:`plan_schema`). The parser is the
authority — it also checks what a schema cannot say (overlapping routes, ``requires``
cycles) — but both read their key sets from :mod:`strangler_proxy.plan.keys`, and tests
check that every plan the parser accepts is valid against this schema.
"""

from __future__ import annotations

import json
from typing import Any

from strangler_proxy.plan import keys as K
from strangler_proxy.plan.model import Stage

__all__ = ["SCHEMA_ID", "plan_schema", "plan_schema_json"]

SCHEMA_ID = "https://strangler.invalid/schemas/migration-plan-1.json"

_URL = {
    "type": "string",
    "pattern": r"^https?://[^/?#@\s]+(/[^?#\s]*)?$",
    "description": "http(s) base URL of an upstream, without query or credentials",
}
_RATE = {"type": "number", "minimum": 0, "maximum": 1}
_PERCENT = {"type": "number", "minimum": 0, "maximum": 100}
_NONNEG = {"type": "number", "minimum": 0}
_NONNEG_INT = {"type": "integer", "minimum": 0}
_JSON_PATHS = {"type": "array", "items": {"type": "string", "pattern": r"^\$"}}
_OPEN_MAP: dict[str, Any] = {"type": "object", "description": "passed through as a mapping"}


def _obj(props: dict[str, Any], keys: frozenset[str], **extra: Any) -> dict[str, Any]:
    assert set(props) == keys, (sorted(props), sorted(keys))
    return {"type": "object", "properties": props, "additionalProperties": False, **extra}


def _timeouts() -> dict[str, Any]:
    return _obj(
        {
            "connect": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
            "read": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
        },
        K.TIMEOUTS,
        description="seconds",
    )


def plan_schema() -> dict[str, Any]:
    route = _obj(
        {
            "path": {
                "type": "string",
                "pattern": r"^/[^?#\s]*$",
                "description": "path template: /api/orders/{id}, {rest:path} as last segment",
            },
            "methods": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "pattern": "^[A-Za-z]{1,20}$"},
            },
            "shadow": _obj({"ignore": _JSON_PATHS, "compare": _OPEN_MAP}, K.ROUTE_SHADOW),
        },
        K.ROUTE,
        required=["path"],
    )
    service = _obj(
        {
            "url": {
                "oneOf": [_URL, {"type": "array", "minItems": 1, "items": _URL}],
            },
            "routes": {
                "type": "array",
                "items": {"oneOf": [route, {"type": "string", "pattern": r"^/[^?#\s]*$"}]},
            },
            "stage": {"enum": [s.value for s in Stage]},
            "canary": _obj(
                {
                    "steps": {"type": "array", "minItems": 1, "items": _PERCENT},
                    "percent": _PERCENT,
                    "cohort": {
                        "type": "string",
                        "pattern": r"^((header|cookie|query):.+|client)$",
                    },
                },
                K.CANARY,
            ),
            "shadow": _obj(
                {
                    "sample": _RATE,
                    "writes": {"enum": ["off", "dry-run", False]},
                    "ignore": _JSON_PATHS,
                    "noise_sample": _RATE,
                    "compare": _OPEN_MAP,
                },
                K.SHADOW,
            ),
            "fallback": {
                "oneOf": [
                    {"enum": [None, False, "off", "monolith"]},
                    _obj(
                        {
                            "to": {"const": "monolith"},
                            "on": {
                                "type": "array",
                                "items": {"enum": sorted(K.FALLBACK_ON)},
                            },
                            "breaker": _obj(
                                {
                                    "failures": {"type": "integer", "minimum": 1},
                                    "reset_s": {"type": "number", "exclusiveMinimum": 0},
                                },
                                K.BREAKER,
                            ),
                        },
                        K.FALLBACK,
                    ),
                ]
            },
            "timeouts": _timeouts(),
            "requires": {"type": "array", "items": {"type": "string"}},
            "gates": _obj(
                {
                    "min_samples": _NONNEG_INT,
                    "max_mismatch_rate": _RATE,
                    "max_error_rate": _RATE,
                    "max_cdc_lag_s": _NONNEG,
                    "min_duration_s": _NONNEG,
                    "max_latency_ratio": {"type": "number", "exclusiveMinimum": 0},
                },
                K.GATES,
            ),
            "data": _obj(
                {
                    "owner": {"enum": ["monolith", "service"]},
                    "tables": {
                        "type": "object",
                        "additionalProperties": {"type": "string", "minLength": 1},
                    },
                    "owned": {
                        "type": "array",
                        "items": {"type": "string", "minLength": 1},
                        "description": "keys of data.tables the service writes, each "
                                       "once: their changes in the service are synced "
                                       "back to the monolith",
                    },
                },
                K.DATA,
            ),
            "salt": {"type": "string", "minLength": 1},
        },
        K.SERVICE,
        required=["url"],
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "strangler migration plan",
        **_obj(
            {
                "version": {"const": 1},
                "monolith": _obj(
                    {"url": _URL, "timeouts": _timeouts()}, K.MONOLITH, required=["url"]
                ),
                "services": {
                    "type": ["object", "null"],
                    "propertyNames": {
                        "pattern": "^[a-z][a-z0-9_-]{0,62}$",
                        "not": {"const": "monolith"},
                    },
                    "additionalProperties": service,
                },
                "proxy": _obj(
                    {
                        "preserve_host": {"type": "boolean"},
                        "max_header_bytes": {"type": "integer", "minimum": 1024},
                        "max_body_bytes": _NONNEG_INT,
                        "shadow_queue": _NONNEG_INT,
                        "cohort_cookie": _obj(
                            {
                                "name": {"type": "string", "minLength": 1},
                                "max_age_s": _NONNEG_INT,
                                "secure": {"type": "boolean"},
                            },
                            K.COHORT_COOKIE,
                        ),
                    },
                    K.PROXY,
                ),
                "kafka": _OPEN_MAP,
                "shadow_store": _OPEN_MAP,
                "cdc": _OPEN_MAP,
                "audit": _obj({"history": {"type": "string", "minLength": 1}}, K.AUDIT),
            },
            K.PLAN,
            required=["version", "monolith"],
        ),
    }


def plan_schema_json() -> str:
    return json.dumps(plan_schema(), indent=2, sort_keys=False) + "\n"
