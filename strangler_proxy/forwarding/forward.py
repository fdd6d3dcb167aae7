"""Forward one ASGI request to an upstream and stream the answer back.

Three steps the caller composes (so fallback can look at the status before the client
sees anything): :func:`read_request_body` → :func:`open_response` (connect, write the
request, wait for the response head) → :func:`relay` (stream the body to the client,
optionally capturing a bounded copy for the shadow comparison).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.types import Receive, Send

from strangler_proxy.forwarding.errors import UpstreamClosed, UpstreamError
from strangler_proxy.forwarding.headers import Header
from strangler_proxy.forwarding.upstream import Connection, Pool

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
SAFE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


@dataclass(frozen=True, slots=True)
class Timeouts:
    """``Timeouts(connect=5.0, read=30.0)`` — read applies to the head and each body wait."""

    connect: float = 5.0
    read: float = 30.0


class BodyTooLarge(Exception):
    pass


class ClientDisconnected(Exception):
    pass


class RequestBody:
    """The client's request body: ``prefix`` already read, the rest (if any) still in
    ``receive``. ``complete`` bodies can be replayed (fallback, mirroring, stale retry)."""

    __slots__ = ("complete", "declared_length", "limit", "prefix", "receive", "total")

    def __init__(
        self,
        prefix: bytes,
        complete: bool,
        receive: Receive | None = None,
        declared_length: int | None = None,
        limit: int = 0,
    ) -> None:
        self.prefix = prefix
        self.complete = complete
        self.receive = receive
        self.declared_length = declared_length
        self.limit = limit
        self.total = len(prefix)


EMPTY_BODY = RequestBody(b"", True)


async def read_request_body(
    receive: Receive,
    *,
    content_length: int | None,
    chunked: bool,
    limit: int,
    buffer_up_to: int = 0,
) -> RequestBody:
    """Read the body until complete or ``buffer_up_to`` bytes are held.

    Raises :class:`BodyTooLarge` when the declared or received size passes ``limit``.
    """
    if content_length is None and not chunked:
        return EMPTY_BODY
    if content_length is not None and content_length > limit:
        raise BodyTooLarge(f"request body of {content_length} bytes exceeds {limit}")
    if content_length == 0:
        return EMPTY_BODY
    parts: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("client went away while sending the body")
        data: bytes = message.get("body", b"")
        if data:
            parts.append(data)
            total += len(data)
            if total > limit:
                raise BodyTooLarge(f"request body exceeds {limit} bytes")
        if not message.get("more_body", False):
            return RequestBody(b"".join(parts), True)
        if total >= buffer_up_to:
            return RequestBody(b"".join(parts), False, receive, content_length, limit)


def request_head(
    method: bytes, target: bytes, headers: Sequence[Header], body: RequestBody
) -> bytes:
    """Request line and headers, framing the body by length when it is complete."""
    lines = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        lines += (name, b": ", value, b"\r\n")
    if body.complete:
        if body.prefix or method not in (b"GET", b"HEAD", b"OPTIONS", b"DELETE", b"TRACE"):
            lines += (b"content-length: ", str(len(body.prefix)).encode(), b"\r\n")
    elif body.declared_length is not None:
        lines += (b"content-length: ", str(body.declared_length).encode(), b"\r\n")
    else:
        lines.append(b"transfer-encoding: chunked\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


async def _write_request(conn: Connection, head: bytes, body: RequestBody) -> None:
    if body.complete:
        await conn.write(head + body.prefix if body.prefix else head)
        return
    chunked = body.declared_length is None
    receive = body.receive
    assert receive is not None
    first = body.prefix
    await conn.write(head + (b"%x\r\n%b\r\n" % (len(first), first) if chunked and first else first))
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("client went away while sending the body")
        data: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        body.total += len(data)
        if body.total > body.limit:
            raise BodyTooLarge(f"request body exceeds {body.limit} bytes")
        if chunked:
            out = b"%x\r\n%b\r\n" % (len(data), data) if data else b""
            if not more:
                out += b"0\r\n\r\n"
        else:
            out = data
        if out:
            await conn.write(out)
        if not more:
            return


async def open_response(
    pool: Pool,
    method: str,
    head: bytes,
    body: RequestBody,
    timeouts: Timeouts,
) -> Connection:
    """Send the request; return the connection once the response head has arrived.

    A pooled connection the upstream had already closed (nothing received back) is
    retried once on a fresh connection when the request is idempotent and replayable.
    """
    retried = False
    while True:
        conn = await pool.acquire(timeouts.connect, fresh=retried)
        conn.begin(head_request=method == "HEAD")
        try:
            await _write_request(conn, head, body)
            await conn.read_head(timeouts.read)
            return conn
        except UpstreamClosed:
            pool.discard(conn)
            stale = conn.reused and not conn.received and body.complete
            if retried or not stale or method not in IDEMPOTENT:
                raise
            retried = True
            pool.stats.stale_retries += 1
        except BaseException:
            pool.discard(conn)
            raise


class Relayed:
    """What :func:`relay` sent: byte count and, if asked, the captured body."""

    __slots__ = ("body_bytes", "captured")

    def __init__(self, body_bytes: int, captured: bytes | None) -> None:
        self.body_bytes = body_bytes
        self.captured = captured


async def relay(
    conn: Connection,
    pool: Pool,
    send: Send,
    receive: Receive,
    *,
    status: int,
    headers: list[Header],
    timeouts: Timeouts,
    capture_limit: int = -1,
) -> Relayed:
    """Stream the upstream response to the client.

    With ``capture_limit >= 0`` a copy of the body up to that size is kept (``None`` if
    the body was larger). An upstream failure after the client got the head raises, so
    the server aborts the client connection instead of faking a complete response.
    """
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if conn.complete:
        data = conn.take_body()
        pool.release(conn)
        await send({"type": "http.response.body", "body": data, "more_body": False})
        captured = data if 0 <= len(data) <= capture_limit else None
        return Relayed(len(data), captured)
    parts: list[bytes] | None = [] if capture_limit >= 0 else None
    kept = 0
    sent = 0
    watcher: asyncio.Task[None] | None = None
    try:
        while True:
            data = await conn.read_body(timeouts.read)
            if not data:
                break
            sent += len(data)
            if parts is not None:
                kept += len(data)
                if kept > capture_limit:
                    parts = None
                else:
                    parts.append(data)
            await send({"type": "http.response.body", "body": data, "more_body": True})
            if watcher is None:
                watcher = asyncio.create_task(_close_on_disconnect(receive, conn))
    except UpstreamError:
        pool.discard(conn)
        if conn.client_gone:  # nobody to tell: the client went away first
            return Relayed(sent, None)
        raise
    except BaseException:
        pool.discard(conn)
        raise
    finally:
        if watcher is not None:
            watcher.cancel()
    pool.release(conn)
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    return Relayed(sent, b"".join(parts) if parts is not None else None)


async def _close_on_disconnect(receive: Receive, conn: Connection) -> None:
    with contextlib.suppress(Exception):
        while (await receive())["type"] != "http.disconnect":
            pass
        if not conn.complete:
            conn.client_gone = True
            conn._fail(UpstreamClosed("client disconnected"))
            conn.close()


async def read_all(conn: Connection, pool: Pool, timeouts: Timeouts, limit: int) -> bytes | None:
    """The whole response body (for mirrored requests); ``None`` when over ``limit``."""
    parts: list[bytes] = []
    total = 0
    try:
        while True:
            data = await conn.read_body(timeouts.read)
            if not data:
                break
            total += len(data)
            if total > limit:
                pool.discard(conn)
                return None
            parts.append(data)
    except BaseException:
        pool.discard(conn)
        raise
    pool.release(conn)
    return b"".join(parts)


def error_body(error: str, message: str, request_id: bytes, **extra: Any) -> bytes:
    return orjson.dumps(
        {"error": error, "message": message, "request_id": request_id.decode(), **extra}
    )


async def send_error(
    send: Send,
    status: int,
    error: str,
    message: str,
    request_id: bytes,
    extra_headers: Sequence[Header] = (),
) -> None:
    body = error_body(error, message, request_id)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id),
                *extra_headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})

