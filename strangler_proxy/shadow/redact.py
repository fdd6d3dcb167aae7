"""Remove credentials from headers before anything is stored (pure)."""

from __future__ import annotations

from collections.abc import Iterable

SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
REDACTED = "[redacted]"


def redact_headers(
    headers: Iterable[tuple[str, str]], sensitive: frozenset[str] = SENSITIVE_HEADERS
) -> list[tuple[str, str]]:
    return [(n, REDACTED if n.lower() in sensitive else v) for n, v in headers]
