"""Whole-message recognition for the common case, without parser callbacks.

Most requests a proxy sees arrive in one read as a complete head with no body, and most
small responses arrive in one read as a head plus a ``Content-Length`` body. For those,
one regular-expression match over the bytes replaces a Python callback per header
(httptools calls ``on_header`` for each), and the header block can be forwarded as it
came. Everything here is pure: bytes in, a description (or ``None``) out.

The grammar accepted is deliberately narrower than HTTP/1.1 (RFC 9112): ``CRLF`` line
ends only, no obs-fold, token header names, field values of visible characters, space,
tab and obs-text, an origin-form target, one of the common methods. Anything else —
and any header the proxy must rewrite or that frames a body — returns ``None`` and the
message goes through httptools as before, so nothing a strict parser would reject or
read differently is ever forwarded by this path.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from strangler_proxy.forwarding.headers import HOP_BY_HOP, Header, valid_host

_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_FIELD_LINE = rb"%s:[\t\x20-\x7e\x80-\xff]*\r\n" % _TOKEN

# Only methods httptools accepts (it answers 400 to others, "PRI" and ones for RTSP);
# CONNECT, which it reads as an upgrade, goes the general way too.
_METHOD = rb"(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|TRACE)"
_REQUEST_LINE = re.compile(rb"%s (/[\x21\x22\x24-\x7e]*) HTTP/1\.1" % _METHOD)
_REQUEST = re.compile(
    rb"%s (/[\x21\x22\x24-\x7e]*) HTTP/1\.1\r\n((?:%s)*)\r\n" % (_METHOD, _FIELD_LINE)
)
_RESPONSE = re.compile(
    rb"HTTP/1\.1 ([2-5][0-9][0-9])(?: [\t\x20-\x7e\x80-\xff]*)?\r\n((?:%s)*)\r\n" % _FIELD_LINE
)
# Over a block already matched: the value runs to the CR. httptools drops leading
# whitespace and keeps trailing whitespace; so does this (and a lazy value followed by
# optional whitespace would take quadratic time over a long run of spaces).
_FIELD = re.compile(rb"(%s):[ \t]*([^\r]*)\r\n" % _TOKEN)

_NAMES = re.compile(rb"^([^:]*):", re.M)

# Request headers the proxy rewrites, drops or must frame a body by (see
# headers.upstream_request_headers): their presence sends the request the general way.
# A lone "Connection: keep-alive|close" is the exception simple_request handles itself.
_REQUEST_SPECIAL = (HOP_BY_HOP - {b"connection"}) | {
    b"content-length", b"expect", b"x-forwarded-for", b"x-forwarded-proto",
    b"x-forwarded-host", b"via", b"x-request-id", b"traceparent",
}
# Response headers the proxy drops or rewrites (headers.client_response_headers).
_RESPONSE_SPECIAL = HOP_BY_HOP | {b"via", b"x-request-id"}


def _value(lower: bytes, original: bytes, name: bytes) -> bytes:
    """The value of the one field line called ``name`` (lower-cased, with its colon)."""
    at = 0 if lower.startswith(name) else lower.index(b"\n" + name) + 1
    at += len(name)
    return original[at : lower.index(b"\r", at)].strip(b" \t")


class SimpleRequest(NamedTuple):
    """A complete request head with no body and nothing for the proxy to rewrite but
    an optional ``Connection: keep-alive|close``."""

    method: bytes
    target: bytes  # origin-form, byte-exact
    block: bytes  # the header lines, each ending in CRLF, as received
    host: bytes
    forward: bytes  # ``block`` without its Connection line: what goes upstream
    keep_alive: bool


class SimpleResponse(NamedTuple):
    """A complete response: head plus a body framed by one ``Content-Length``."""

    status: int
    block: bytes  # header lines as received (``Content-Length`` included)
    body: bytes
    head: bytes  # status line, header lines and the blank line, as received


_new = tuple.__new__


def simple_request(data: bytes, last: SimpleRequest | None = None) -> SimpleRequest | None:
    """``data`` as one body-less request the proxy may forward with its header block
    untouched (plus the headers it appends), or ``None``.

    ``last`` is the previous simple request on the same connection: clients repeat
    their header block request after request, and a block equal to one already
    checked needs only its request line checked (the returned request then shares
    ``last.block``)."""
    if last is not None:
        block = last.block
        line_end = len(data) - len(block) - 4
        if (line_end > 0 and data.startswith(block, line_end + 2)
                and data.startswith(b"\r\n", line_end) and data.endswith(b"\r\n")):
            line = _REQUEST_LINE.fullmatch(data, 0, line_end)
            if line is not None:
                method, target = line.groups()
                return _new(SimpleRequest, (method, target, block, last.host, last.forward,
                                            last.keep_alive))
    m = _REQUEST.fullmatch(data)
    if m is None:
        return None
    method, target, block = m.groups()
    lower = block.lower()
    names = _NAMES.findall(lower)
    if not _REQUEST_SPECIAL.isdisjoint(names) or names.count(b"host") != 1:
        return None
    host = _value(lower, block, b"host:")
    if not host or not valid_host(host):
        return None
    forward, keep_alive = block, True
    connection = names.count(b"connection")
    if connection:
        value = _value(lower, lower, b"connection:")
        if connection > 1 or value not in (b"keep-alive", b"close"):
            return None  # other tokens name headers to drop: the general path does that
        keep_alive = value == b"keep-alive"
        at = 0 if lower.startswith(b"connection:") else lower.index(b"\nconnection:") + 1
        forward = block[:at] + block[lower.index(b"\n", at) + 1 :]
    return _new(SimpleRequest, (method, target, block, host, forward, keep_alive))


def simple_response(data: bytes, last: SimpleResponse | None = None) -> SimpleResponse | None:
    """``data`` as exactly one complete response whose head can pass as received, or
    ``None``. Interim (1xx), 204/304 and responses to HEAD are left to the parser.

    ``last`` is the previous simple response on the same connection: a head equal to
    its head (status line and fields, so also its length) is not checked again."""
    if last is not None:
        size = len(data) - len(last.body)
        if size > 0 and data[:size] == last.head:
            return _new(SimpleResponse, (last.status, last.block, data[size:], last.head))
    m = _RESPONSE.match(data)
    if m is None:
        return None
    status = int(m.group(1))
    if status == 204 or status == 304:
        return None
    block = m.group(2)
    lower = block.lower()
    names = _NAMES.findall(lower)
    if not _RESPONSE_SPECIAL.isdisjoint(names) or names.count(b"content-length") != 1:
        return None
    length = _value(lower, lower, b"content-length:")
    if not length.isdigit() or len(length) > 15:
        return None
    body = data[m.end() :]
    if len(body) != int(length):
        return None
    end = m.end()
    return _new(SimpleResponse, (status, block, body, data[:end]))


def field_lines(block: bytes) -> list[Header]:
    """A header block as ``(lower-cased name, value)`` pairs, values without leading
    whitespace (trailing whitespace is kept, as httptools keeps it) — what the parser
    path would have collected."""
    return [(name.lower(), value) for name, value in _FIELD.findall(block)]


__all__ = [
    "SimpleRequest",
    "SimpleResponse",
    "field_lines",
    "simple_request",
    "simple_response",
]
