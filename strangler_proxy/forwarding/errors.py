"""Upstream failures, translated at the socket/parser boundary.

::

    UpstreamError                 (kind: str — used in metrics, logs and Observations)
    ├── UpstreamConnectError      "connect_error"  — refused, unreachable, DNS     → 502
    ├── UpstreamTimeout           "timeout"        — connect, first byte or body   → 504
    ├── UpstreamClosed            "closed"         — connection ended mid-response → 502
    └── UpstreamProtocolError     "protocol_error" — unparseable response          → 502
"""

from __future__ import annotations


class UpstreamError(Exception):
    kind = "upstream_error"
    status = 502


class UpstreamConnectError(UpstreamError):
    kind = "connect_error"


class UpstreamTimeout(UpstreamError):
    kind = "timeout"
    status = 504


class UpstreamClosed(UpstreamError):
    kind = "closed"


class UpstreamProtocolError(UpstreamError):
    kind = "protocol_error"
