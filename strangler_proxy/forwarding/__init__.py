"""Forwarding: the proxy's I/O edge.

``upstream`` (keep-alive pools on asyncio + httptools) → ``forward`` (stream one
request/response) → ``handler`` (one client request end to end: decide, fallback,
breaker, relay, shadow hand-off) with ``mirror`` (bounded shadow queue). ``headers``
and ``breaker`` are pure.
"""

from strangler_proxy.forwarding.breaker import Breaker
from strangler_proxy.forwarding.errors import (
    UpstreamClosed,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from strangler_proxy.forwarding.forward import Timeouts
from strangler_proxy.forwarding.handler import Handler
from strangler_proxy.forwarding.mirror import Mirror, MirrorJob
from strangler_proxy.forwarding.upstream import Pool, Upstream

__all__ = [
    "Breaker",
    "Handler",
    "Mirror",
    "MirrorJob",
    "Pool",
    "Timeouts",
    "Upstream",
    "UpstreamClosed",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamTimeout",
]
