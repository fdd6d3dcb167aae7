"""The keys each plan section accepts — shared by the parser and the JSON Schema."""

from __future__ import annotations

PLAN = frozenset(
    {"version", "monolith", "services", "proxy", "kafka", "shadow_store", "cdc", "audit"}
)
AUDIT = frozenset({"history"})
MONOLITH = frozenset({"url", "timeouts"})
TIMEOUTS = frozenset({"connect", "read"})
PROXY = frozenset(
    {"preserve_host", "max_header_bytes", "max_body_bytes", "shadow_queue", "cohort_cookie"}
)
COHORT_COOKIE = frozenset({"name", "max_age_s", "secure"})
SERVICE = frozenset(
    {
        "url",
        "routes",
        "stage",
        "canary",
        "shadow",
        "fallback",
        "timeouts",
        "requires",
        "gates",
        "data",
        "salt",
    }
)
ROUTE = frozenset({"path", "methods", "shadow"})
ROUTE_SHADOW = frozenset({"ignore", "compare"})
CANARY = frozenset({"steps", "percent", "cohort"})
SHADOW = frozenset({"sample", "writes", "ignore", "noise_sample", "compare"})
FALLBACK = frozenset({"to", "on", "breaker"})
FALLBACK_ON = frozenset({"connect_error", "timeout", "5xx"})
BREAKER = frozenset({"failures", "reset_s"})
GATES = frozenset(
    {
        "min_samples",
        "max_mismatch_rate",
        "max_error_rate",
        "max_cdc_lag_s",
        "min_duration_s",
        "max_latency_ratio",
    }
)
DATA = frozenset({"owner", "tables", "owned"})
