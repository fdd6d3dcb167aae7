"""uvicorn's httptools protocol with the forwarding fast path and coalesced writes.

uvicorn writes the response head and each body message with separate
``transport.write`` calls; on uvloop each is a ``send()`` syscall, and on loopback a
send also pays for the receiver's TCP processing. Writes made in the same event-loop
iteration (the head and a small body always are) are joined and sent once, at the end
of the iteration. Measured on the proxy bench: one fewer syscall per response.

Ordinary requests do not reach ASGI at all: see :class:`ProxyHttpProtocol` and
:mod:`strangler_proxy.forwarding.fastpath`.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from strangler_proxy.forwarding.fastpath import Exchange, FastPath
from strangler_proxy.forwarding.handler import EMPTY_QUERY
from strangler_proxy.forwarding.quickhead import SimpleRequest, simple_request
from strangler_proxy.forwarding.writebatch import WriteBatch


class CoalescingTransport:
    """Wraps a transport; ``write`` is deferred to the end of the loop iteration."""

    __slots__ = ("_loop", "_transport", "batch", "pending")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self.pending: list[bytes] | None = None
        self.batch: WriteBatch | None = None  # the fast path's held writes go out first

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.pending is None:
            self.pending = [bytes(data)]
            self._loop.call_soon(self.flush)
        else:
            self.pending.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        pending, self.pending = self.pending, None
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._flush_all()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush_all()
        self._transport.write_eof()

    def _flush_all(self) -> None:
        if self.batch is not None:
            self.batch.flush()
        self.flush()

    def abort(self) -> None:
        self.pending = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        pending = sum(len(d) for d in self.pending) if self.pending else 0
        return self._transport.get_write_buffer_size() + pending

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class KeepAlive:
    """Closes client connections idle longer than uvicorn's ``timeout_keep_alive``,
    checked about once a second by one task per event loop. uvicorn arms a timer after
    every response and cancels it on the next request (~1.5 µs per request); here a
    connection is watched from its start and a response only sets its ``idle_since``
    timestamp. Idle connections close up to a second late."""

    def __init__(self, resolution: float = 1.0) -> None:
        self.resolution = resolution
        self.watched: set[ProxyHttpProtocol] = set()
        self._task: asyncio.Task[None] | None = None

    def watch(self, protocol: ProxyHttpProtocol) -> None:
        """Watch a connection until it closes (see :meth:`forget`)."""
        self.watched.add(protocol)
        task = self._task
        if task is None or task.done():
            self._task = protocol.loop.create_task(self._sweep(protocol.loop))

    def forget(self, protocol: ProxyHttpProtocol) -> None:
        self.watched.discard(protocol)

    async def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        while self.watched:
            await asyncio.sleep(self.resolution)
            now = loop.time()
            for protocol in list(self.watched):
                since = protocol.idle_since
                if protocol.transport.is_closing():
                    self.watched.discard(protocol)
                elif since is not None and now - since >= protocol.timeout_keep_alive:
                    self.watched.discard(protocol)
                    protocol.transport.close()


KEEP_ALIVE = KeepAlive()


def find_fast_path(app: Any) -> FastPath | None:
    """The proxy app's enabled :class:`FastPath`, looking through uvicorn's wrappers."""
    for _ in range(8):
        fast = getattr(app, "fast", None)
        if isinstance(fast, FastPath):
            return fast if fast.enabled else None
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


class ProxyHttpProtocol(HttpToolsProtocol):
    """``uvicorn.run(..., http=ProxyHttpProtocol)``: coalesced writes, and ordinary
    requests forwarded by :mod:`~strangler_proxy.forwarding.fastpath` without ASGI.

    A fast :class:`~strangler_proxy.forwarding.fastpath.Exchange` stands in for uvicorn's
    ``RequestResponseCycle`` (``self.cycle``, the ``pipeline`` queue), so fast and ASGI
    requests pipelined on one connection are answered in order.
    """

    active: Exchange | None = None
    fast: FastPath | None = None
    idle_since: float | None = None
    in_message = False  # the parser holds part of a request
    pending_400: str | None = None  # invalid bytes after requests still being answered
    drain_first = False  # a response completed while the client was not reading
    simple_last: SimpleRequest | None = None
    simple_block: bytes | None = None  # a header block seen on this connection, and
    simple_prefix: bytes = b""  # that block with the connection's forwarding headers

    def data_received(self, data: bytes) -> None:
        """A complete body-less request in one read, with nothing in flight on the
        connection, is recognised whole (:mod:`~.quickhead`) instead of parsed."""
        fast = self.fast
        if fast is not None and not self.in_message and data[-4:] == b"\r\n\r\n":
            cycle = self.cycle
            if (cycle is None or cycle.response_complete) and not self.pipeline:
                request = simple_request(data, self.simple_last)
                if request is not None:
                    self.simple_last = request
                    exchange = fast.simple_exchange(
                        self, request, len(data), self.client_ip, self.client_addr,
                        self.scheme_bytes,
                    )
                    if exchange is not None:
                        self.idle_since = None
                        self.cycle = exchange  # type: ignore[assignment]
                        exchange.runnable = exchange.body_complete = True
                        exchange.start()
                        return
        super().data_received(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.raw_transport = cast(asyncio.Transport, transport)
        self.coalescing = CoalescingTransport(self.raw_transport, self.loop)
        super().connection_made(self.coalescing)  # type: ignore[arg-type]
        if self.limit_concurrency is None:
            self.fast = find_fast_path(self.app)
            if self.fast is not None:
                self.coalescing.batch = self.fast.batch
        self.header_bytes = 0
        KEEP_ALIVE.watch(self)
        self.client_addr = self.client[0] if self.client else None
        self.client_ip = (self.client_addr or "unknown").encode()
        self.scheme_bytes = (self.scheme or "http").encode()

    def connection_lost(self, exc: Exception | None) -> None:
        active = self.active
        KEEP_ALIVE.forget(self)
        super().connection_lost(exc)
        if active is not None:
            self.active = None
            active.client_lost()

    # parser callbacks
    def on_message_begin(self) -> None:
        self.in_message = True
        if self.fast is None:
            super().on_message_begin()
            return
        self.url = b""
        self.headers = []
        self.expect_100_continue = False
        self.header_bytes = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))
        self.header_bytes += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        fast = self.fast
        exchange = None
        parser = self.parser
        if fast is not None and not self.expect_100_continue and not parser.should_upgrade():
            version = parser.get_http_version()
            if version == "1.1" or version == "1.0":
                # HTTP/1.0 keeps the connection only with "Connection: keep-alive"
                exchange = fast.exchange(
                    self, parser.get_method(), self.url, self.headers, self.header_bytes,
                    parser.should_keep_alive(), self.client_ip, self.client_addr,
                    self.scheme_bytes,
                )
                if exchange is not None and version == "1.0":
                    exchange.close_delimited = True  # no chunked encoding for 1.0
        if exchange is None:
            if fast is not None:  # the ASGI path needs the scope the fast path skipped
                url, headers, expect = self.url, self.headers, self.expect_100_continue
                super().on_message_begin()
                self.url, self.headers, self.expect_100_continue = url, headers, expect
                self.scope["headers"] = headers
            super().on_headers_complete()
            if self.url.endswith(b"?") and not self.scope["query_string"]:
                # httptools reads "/a?" as "/a" with no query; the ASGI handler keeps the
                # "?" as the client sent it (byte-exact forwarding)
                self.scope.setdefault("extensions", {})[EMPTY_QUERY] = {}
            return
        existing = self.cycle
        self.cycle = exchange  # type: ignore[assignment]
        if existing is None or existing.response_complete:
            exchange.runnable = True
        else:  # pipelined behind an unfinished response: wait for its turn
            self.flow.pause_reading()
            self.pipeline.appendleft((exchange, None))  # type: ignore[arg-type]

    def on_body(self, body: bytes) -> None:
        cycle: Any = self.cycle
        if type(cycle) is Exchange:
            if cycle.body_parts is None:
                cycle.body_parts = [body]
            else:
                cycle.body_parts.append(body)
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        cycle: Any = self.cycle
        if type(cycle) is Exchange:
            cycle.body_complete = True
            if cycle.runnable:
                cycle.start()
            return
        super().on_message_complete()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if type(cycle) is Exchange:
            cycle.runnable = True
            if cycle.body_complete:
                self.loop.call_soon(cycle.start)
            return
        super()._start_asgi_task(cycle, app)

    # keep-alive: a timestamp and a sweeper instead of a timer per response
    def _unset_keepalive_if_required(self) -> None:
        self.idle_since = None

    def send_400_response(self, msg: str) -> None:
        """Garbage after pipelined requests: answer those first, then the 400 (uvicorn
        would answer 400 at once and drop the responses still on their way)."""
        cycle = self.cycle
        if (cycle is not None and not cycle.response_complete) or self.pipeline:
            self.pending_400 = msg
            self.transport.pause_reading()
            return
        super().send_400_response(msg)

    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.raw_transport.is_closing():
            return
        flow = self.flow
        if flow.write_paused:
            # The client is not reading. A response that arrived whole is complete all
            # the same, so pausing its upstream held nothing back: take no further
            # request from this client until it drains (resume_writing).
            flow.pause_reading()
            self.drain_first = True
        elif self.pending_400 is None and not flow.read_paused and not self.pipeline:
            self.idle_since = self.loop.time()  # nothing waits: _next_request's last case
        else:
            self._next_request()

    def _next_request(self) -> None:
        if self.pending_400 is not None and not self.pipeline:
            super().send_400_response(self.pending_400)
            return
        if self.flow.read_paused:
            self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self.idle_since = self.loop.time()

    # flow control: a slow client pauses the upstream of the active exchange
    def pause_writing(self) -> None:
        super().pause_writing()
        if self.active is not None:
            self.active.client_paused()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.active is not None:
            self.active.client_resumed()
        if self.drain_first:
            self.drain_first = False
            if not self.transport.is_closing():
                self._next_request()

    # fastpath.Client
    @property
    def write_paused(self) -> bool:
        return bool(self.flow.write_paused)

    def write(self, data: bytes) -> None:
        if self.coalescing.pending:  # an earlier ASGI response still waits to be sent
            self.coalescing.flush()
        assert self.fast is not None
        self.fast.batch.write(self.loop, self.raw_transport, data)

    def response_done(self, exchange: Exchange) -> None:
        if self.active is exchange:
            self.active = None
        if not exchange.keep_alive:
            self.transport.close()  # sends the held writes first
        self.on_response_complete()
