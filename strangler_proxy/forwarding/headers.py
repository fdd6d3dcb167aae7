"""Header rewriting between client and upstream — pure functions over ``(name, value)`` bytes.

Names arrive lower-cased (ASGI guarantees it for requests; the upstream parser lowers
response names). Everything here is a function of its arguments plus, for new ids,
:func:`random.getrandbits` (ids need to be unique, not secret: ``os.urandom`` is a
system call, three per request; the ``random`` module reseeds in forked workers); no I/O.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence

Header = tuple[bytes, bytes]

VIA = b"1.1 strangler"

HOP_BY_HOP: frozenset[bytes] = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Not hop-by-hop by RFC, but the proxy answers them itself: uvicorn sends the
# ``100 Continue`` to the client, and body framing toward the upstream is ours.
_REQUEST_DROP: frozenset[bytes] = HOP_BY_HOP | {b"expect", b"content-length"}
_RESPONSE_DROP: frozenset[bytes] = HOP_BY_HOP

# RFC 3986 host [":" port]: reg-name/IPv4 (unreserved, pct-encoded, sub-delims) or an
# IP literal in brackets. Empty is allowed (a target without authority).
_HOST_RE = re.compile(rb"[A-Za-z0-9._~%!$&'()*+,;=:\[\]-]*")
_REQUEST_ID_RE = re.compile(rb"^[\x21-\x7e]{1,200}$")
_TRACEPARENT_RE = re.compile(rb"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE = b"0" * 32
_ZERO_SPAN = b"0" * 16


def valid_host(value: bytes) -> bool:
    """A ``Host`` value the proxy forwards (RFC 9112 §3.2: anything else gets 400)."""
    return _HOST_RE.fullmatch(value) is not None


def connection_tokens(headers: Iterable[Header]) -> frozenset[bytes]:
    """Header names listed in every ``Connection`` header (lower-cased)."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            for token in value.split(b","):
                token = token.strip().lower()
                if token:
                    tokens.add(token)
    return frozenset(tokens)


def strip_hop_by_hop(headers: Sequence[Header]) -> list[Header]:
    """Drop hop-by-hop headers, including any named in ``Connection``."""
    named = connection_tokens(headers)
    return [(n, v) for n, v in headers if n not in HOP_BY_HOP and n not in named]


_bits = random.getrandbits


class TraceIds:
    """Random request ids (32 hex digits) and span ids (16), drawn in bulk.

    Formatting one large random integer as hex and slicing it costs about a third of
    formatting a 128-bit and a 64-bit one per request. Never all zeros (W3C trace
    context forbids zero trace and span ids)."""

    __slots__ = ("_at", "_hex")

    BATCH = 256
    _SIZE = 48 * BATCH

    def __init__(self) -> None:
        self._hex = b""
        self._at = self._SIZE

    def take(self) -> tuple[bytes, bytes]:
        """A new (request id, span id)."""
        while True:
            at = self._at
            if at == self._SIZE:
                self._hex = _bits(192 * self.BATCH).to_bytes(24 * self.BATCH, "big").hex().encode()
                at = 0
            self._at = at + 48
            text = self._hex
            rid, span = text[at : at + 32], text[at + 32 : at + 48]
            if rid != _ZERO_TRACE and span != _ZERO_SPAN:
                return rid, span


TRACE_IDS = TraceIds()


def new_request_id() -> bytes:
    """32 hex digits, never all zero (the fast path also uses it as a new trace id)."""
    return TRACE_IDS.take()[0]


def request_id_from(value: bytes | None) -> bytes:
    """Keep a client's X-Request-ID when it is sane (printable, <= 200 bytes)."""
    if value is not None and _REQUEST_ID_RE.match(value):
        return value
    return new_request_id()


def next_traceparent(value: bytes | None) -> bytes:
    """W3C trace context for the next hop: same trace id and flags, new parent span id.

    An absent or malformed ``traceparent`` starts a new trace (sampled flag set).
    """
    if value is not None:
        m = _TRACEPARENT_RE.match(value.strip())
        if m is not None:
            version, trace_id, span_id, flags = m.groups()
            if version != b"ff" and trace_id != _ZERO_TRACE and span_id != _ZERO_SPAN:
                return b"00-%s-%016x-%s" % (trace_id, _bits(64) or 1, flags)
    return b"00-%032x-%016x-01" % (_bits(128) or 1, _bits(64) or 1)


def _append(existing: bytes | None, value: bytes) -> bytes:
    return value if not existing else existing + b", " + value


class RequestHeaders:
    """Result of :func:`upstream_request_headers`."""

    __slots__ = ("chunked", "content_length", "headers", "host", "request_id")

    def __init__(
        self,
        headers: list[Header],
        request_id: bytes,
        content_length: int | None,
        chunked: bool,
        host: bytes | None,
    ) -> None:
        self.headers = headers
        self.request_id = request_id
        self.content_length = content_length
        self.chunked = chunked
        self.host = host


class InvalidRequestHeaders(ValueError):
    """The client's framing headers are contradictory or malformed."""


def upstream_request_headers(
    headers: Sequence[Header],
    *,
    client_ip: bytes,
    scheme: bytes,
    host_override: bytes | None = None,
    require_host: bool = False,
) -> RequestHeaders:
    """Headers to send upstream for a client request.

    Hop-by-hop headers (and those named in ``Connection``), ``Expect`` and the body
    framing headers are removed — the caller re-frames the body from the returned
    ``content_length``/``chunked``. ``X-Forwarded-For/-Proto/-Host`` and ``Via`` are
    appended to, ``X-Request-ID`` is kept or created, ``traceparent`` gets a new span id
    (or a new trace). ``Host`` is kept unless ``host_override`` is given.
    """
    named: frozenset[bytes] = frozenset()
    for name, _ in headers:
        if name == b"connection":
            named = connection_tokens(headers)
            break
    out: list[Header] = []
    xff = xfp = xfh = via = rid = tp = host = None
    content_length: int | None = None
    chunked = False
    for name, value in headers:
        if name in _REQUEST_DROP or name in named:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise InvalidRequestHeaders("malformed Content-Length") from None
                if length < 0 or (content_length is not None and content_length != length):
                    raise InvalidRequestHeaders("malformed Content-Length")
                content_length = length
            elif name == b"transfer-encoding":
                chunked = chunked or b"chunked" in value.lower()
            continue
        if name == b"x-forwarded-for":
            xff = _append(xff, value)
        elif name == b"x-forwarded-proto":
            xfp = _append(xfp, value)
        elif name == b"x-forwarded-host":
            xfh = _append(xfh, value)
        elif name == b"via":
            via = _append(via, value)
        elif name == b"x-request-id":
            rid = value
        elif name == b"traceparent":
            tp = value
        elif name == b"host":
            if host is not None:
                raise InvalidRequestHeaders("more than one Host header")
            host = value.strip(b" \t")  # httptools keeps trailing whitespace
            if not valid_host(host):
                raise InvalidRequestHeaders("malformed Host header")
            if host_override is None:
                out.append((name, value))
        else:
            out.append((name, value))
    if host is None and require_host:
        raise InvalidRequestHeaders("missing Host header (required in HTTP/1.1)")
    if chunked:
        content_length = None
    request_id = request_id_from(rid)
    if host_override is not None:
        out.append((b"host", host_override))
    out.append((b"x-forwarded-for", _append(xff, client_ip)))
    out.append((b"x-forwarded-proto", _append(xfp, scheme)))
    if host is not None:
        out.append((b"x-forwarded-host", _append(xfh, host)))
    elif xfh is not None:
        out.append((b"x-forwarded-host", xfh))
    out.append((b"via", _append(via, VIA)))
    out.append((b"x-request-id", request_id))
    out.append((b"traceparent", next_traceparent(tp)))
    return RequestHeaders(out, request_id, content_length, chunked, host)


def client_response_headers(
    headers: Sequence[Header], *, status: int, request_id: bytes
) -> list[Header]:
    """Headers to send the client for an upstream response.

    Hop-by-hop headers go (uvicorn re-frames the body), ``Via`` is appended,
    ``X-Request-ID`` is added when the upstream did not echo it, and ``Content-Length``
    is dropped on 204/304 where no body may follow. Repeated headers such as
    ``Set-Cookie`` stay separate and in order.
    """
    named: frozenset[bytes] = frozenset()
    for name, _ in headers:
        if name == b"connection":
            named = connection_tokens(headers)
            break
    no_body = status == 204 or status == 304
    out: list[Header] = []
    via = None
    has_rid = False
    for name, value in headers:
        if name in _RESPONSE_DROP or name in named:
            continue
        if name == b"via":
            via = _append(via, value)
            continue
        if name == b"x-request-id":
            has_rid = True
        elif no_body and name == b"content-length":
            continue
        out.append((name, value))
    out.append((b"via", _append(via, VIA)))
    if not has_rid:
        out.append((b"x-request-id", request_id))
    return out
