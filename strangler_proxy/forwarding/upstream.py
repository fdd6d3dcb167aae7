"""Keep-alive HTTP/1.1 connections to one upstream, on asyncio protocols + httptools.

One :class:`Connection` carries one request/response at a time. The response is parsed
by ``httptools`` as bytes arrive. Two ways to consume it:

* awaiting (the ASGI path, the shadow mirror): the consumer awaits the head and then
  pulls body chunks. Reading pauses when more than :data:`HIGH_WATER` bytes wait
  unconsumed, so a slow client never makes the proxy buffer a large download.
* pushed (the fast path): with ``conn.sink`` set, the parser callbacks call the sink
  directly (:class:`ResponseSink`) — no futures, no buffering; the sink pauses reading
  itself when its client cannot keep up.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol, cast
from urllib.parse import urlsplit

import httptools

from strangler_proxy.forwarding.errors import (
    UpstreamClosed,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from strangler_proxy.forwarding.headers import Header
from strangler_proxy.forwarding.quickhead import SimpleResponse, simple_response

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024


@dataclass(frozen=True, slots=True)
class Upstream:
    """``Upstream.from_url("http://127.0.0.1:8101")``; only plan URLs become upstreams."""

    scheme: str
    host: str
    port: int
    base_path: bytes = b""

    @classmethod
    def from_url(cls, url: str) -> Upstream:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream URL must be http(s)://host[:port]: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/").encode())

    @property
    def netloc(self) -> bytes:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (host if self.port == default else f"{host}:{self.port}").encode()

    def __str__(self) -> str:
        return f"{self.scheme}://{self.netloc.decode()}{self.base_path.decode()}"


class ResponseSink(Protocol):
    """Receives a response pushed by :class:`Connection` callbacks (``conn.sink``)."""

    def upstream_head(self) -> None: ...

    def upstream_body(self, data: bytes) -> None: ...

    def upstream_done(self) -> None: ...

    def upstream_whole(self, response: SimpleResponse) -> None:
        """The whole response in one read, recognised without the parser; the
        connection is complete and reusable (nothing else is called for it)."""

    def upstream_failed(self, error: UpstreamError) -> None: ...

    def upstream_flush(self) -> None:
        """End of one ``data_received``: write out what the callbacks gathered."""


_RESET: dict[str, object] = {
    "status": 0, "head_done": False, "complete": False, "keep_alive": False,
    "received": False, "error": None, "buffered": 0, "paused": False, "client_gone": False,
    "_framed": False, "has_length": False,
    "fresh": True,  # nothing of this response has reached the parser yet
}
"""Per-response state as it is before a request is written (:meth:`Connection.begin`)."""


class Connection(asyncio.Protocol):
    """One upstream connection; see the module docstring."""

    status: int
    head_done: bool
    complete: bool
    keep_alive: bool
    received: bool
    error: UpstreamError | None
    buffered: int
    paused: bool
    client_gone: bool
    _framed: bool
    has_length: bool
    fresh: bool
    head_request: bool

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.sink: ResponseSink | None = None
        self.closed = False
        self.reused = False
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.waiting_for = ""
        self.simple_last: SimpleResponse | None = None
        self.headers: list[Header] = []
        self.chunks: deque[bytes] = deque()
        self.begin(head_request=False)

    def begin(self, *, head_request: bool) -> None:
        """Reset per-response state before a request is written (one dict update: this
        runs for every forwarded request)."""
        self.__dict__.update(_RESET)
        self.head_request = head_request
        if self.headers:  # replaced, not cleared: a consumer may hold the old list
            self.headers = []
        if self.chunks:
            self.chunks.clear()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.received = True
        sink = self.sink
        if self.fresh:
            self.fresh = False
            if sink is not None and not self.head_request:
                whole = simple_response(data, self.simple_last)
                if whole is not None:
                    self.simple_last = whole
                    self.status = whole.status
                    self.head_done = self.complete = self.keep_alive = True
                    sink.upstream_whole(whole)
                    return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"invalid response from upstream: {exc}"))
            self.close()
            return
        sink = self.sink
        if sink is not None:
            sink.upstream_flush()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        DEADLINES.discard(self)
        if self.head_done and not self.complete and not self._framed and self.error is None:
            self.complete = True  # body delimited by connection close
            sink = self.sink
            if sink is not None:
                sink.upstream_done()
            else:
                self._wake()
        elif not self.complete:
            self._fail(UpstreamClosed("upstream closed the connection"))
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length":
            self._framed = self.has_length = True
        elif name == b"transfer-encoding":
            self._framed = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self.headers = []  # interim response (100 Continue, 103 Early Hints): skip
            self._framed = False
            return
        self.status = status
        self.head_done = True
        if self.head_request:
            # httptools cannot be told the request was HEAD: end the message here and
            # start a fresh parser for the next response on this connection.
            self.complete = True
            self.keep_alive = self.parser.get_http_version() == "1.1" and not any(
                n == b"connection" and b"close" in v.lower() for n, v in self.headers
            )
            self.parser = httptools.HttpResponseParser(self)
        sink = self.sink
        if sink is None:
            self._wake()
            return
        sink.upstream_head()
        if self.complete and self.sink is sink:
            sink.upstream_done()

    def on_body(self, body: bytes) -> None:
        sink = self.sink
        if sink is not None:
            sink.upstream_body(body)
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self.head_done or self.complete:
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()
        sink = self.sink
        if sink is not None:
            sink.upstream_done()
        else:
            self._wake()

    # consumer side
    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: UpstreamError) -> None:
        if self.error is None:
            self.error = error
            sink = self.sink
            if sink is not None:
                sink.upstream_failed(error)
                return
        self._wake()

    async def _wait(self, timeout: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        self.waiting_for = what
        DEADLINES.add(self, loop.time() + timeout, loop)
        try:
            await waiter
        finally:
            DEADLINES.discard(self)
            self._waiter = None
        if self.error is not None:
            raise self.error

    def expired(self) -> None:
        """Called by :data:`DEADLINES` when a wait outlives its timeout."""
        if self.sink is not None or (self._waiter is not None and not self._waiter.done()):
            self._fail(UpstreamTimeout(f"upstream timed out waiting for {self.waiting_for}"))
            self.close()

    async def write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise UpstreamClosed("upstream connection is closed")
        self.transport.write(data)
        if self._write_paused:
            self._drain = asyncio.get_running_loop().create_future()
            await self._drain
            self._drain = None
            if self.closed:
                raise self.error or UpstreamClosed("upstream closed the connection")

    async def read_head(self, timeout: float) -> None:
        while not self.head_done:
            if self.error is not None:
                raise self.error
            await self._wait(timeout, "response headers")

    def take_body(self) -> bytes:
        """Everything buffered so far (may be empty)."""
        chunks = self.chunks
        if not chunks:
            return b""
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    async def read_body(self, timeout: float) -> bytes:
        """Next body bytes; ``b""`` once the response is complete."""
        while True:
            if self.chunks:
                return self.take_body()
            if self.complete:
                return b""
            if self.error is not None:
                raise self.error
            await self._wait(timeout, "response body")

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Deadlines:
    """Read timeouts for waiting connections, checked every ``resolution`` seconds by one
    task per event loop — a timer per wait (``call_later`` + ``cancel``) cost ~2 µs, about
    4% of a forwarded request. Timeouts fire up to ``resolution`` late.

    The checking task stops ~2 s after the last wait (an idle proxy stays idle);
    :attr:`sweeping` names the loop it runs on, so the fast path arms a timeout with a
    store in :attr:`waiting` and an identity check instead of a call to :meth:`add`."""

    def __init__(self, resolution: float = 0.05) -> None:
        self.resolution = resolution
        self.waiting: dict[Connection, float] = {}
        self.sweeping: asyncio.AbstractEventLoop | None = None  # while the task runs
        self._task: asyncio.Task[None] | None = None

    def add(
        self, conn: Connection, deadline: float, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        """Watch ``conn`` until ``deadline`` (pass the running ``loop`` when at hand:
        ``asyncio.get_running_loop()`` costs a ``getpid()`` system call on Python 3.11)."""
        self.waiting[conn] = deadline
        if loop is None:
            loop = asyncio.get_running_loop()
        if self.sweeping is not loop:
            self.start(loop)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the checking task on ``loop`` (the one serving the waits from now on)."""
        self.sweeping = loop
        self._task = loop.create_task(self._sweep(loop))

    def discard(self, conn: Connection) -> None:
        self.waiting.pop(conn, None)

    async def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        idle = 0
        try:
            while idle < 40:  # stop after ~2 s with nothing waiting; add() restarts it
                await asyncio.sleep(self.resolution)
                if not self.waiting:
                    idle += 1
                    continue
                idle = 0
                now = loop.time()
                for conn in [c for c, d in self.waiting.items() if d <= now]:
                    self.waiting.pop(conn, None)
                    conn.expired()
        finally:
            if self.sweeping is loop and self._task is asyncio.current_task(loop):
                self.sweeping = None


DEADLINES = Deadlines()


@dataclass(slots=True)
class PoolStats:
    opened: int = 0
    reused: int = 0
    stale_retries: int = 0


@dataclass(eq=False)
class Pool:
    """Keep-alive connections to one upstream.

    ``max_connections`` bounds open connections (callers beyond it wait their turn);
    at most ``max_idle`` are kept for reuse, most recently used first.
    """

    upstream: Upstream
    max_connections: int = 512
    max_idle: int = 128
    ssl_context: ssl.SSLContext | None = None
    stats: PoolStats = field(default_factory=PoolStats)

    def __post_init__(self) -> None:
        self._idle: list[Connection] = []
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        if self.upstream.scheme == "https" and self.ssl_context is None:
            self.ssl_context = ssl.create_default_context()

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def idle_connections(self) -> int:
        return len(self._idle)

    async def acquire(self, connect_timeout: float, *, fresh: bool = False) -> Connection:
        """A connection for one request: the most recently used idle one, else a new one
        (``fresh=True`` skips the idle ones)."""
        if not fresh:
            found = self.take_idle()
            if found is not None:
                return found
        idle = self._idle
        while self._open >= self.max_connections:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if idle:
                return await self.acquire(connect_timeout)
        self._open += 1
        try:
            return await self.connect(connect_timeout)
        except BaseException:
            self._open -= 1
            self._notify()
            raise

    def take_idle(self) -> Connection | None:
        """The most recently used idle connection still open, without waiting."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn.reused = True
                self.stats.reused += 1
                return conn
            self._open -= 1
        return None

    async def connect(self, timeout: float) -> Connection:
        """A new connection, not counted against the pool (callers count it)."""
        loop = asyncio.get_running_loop()
        up = self.upstream
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    Connection,
                    up.host,
                    up.port,
                    ssl=self.ssl_context,
                    server_hostname=up.host if self.ssl_context else None,
                )
        except TimeoutError:
            raise UpstreamTimeout(f"connect to {up} timed out after {timeout}s") from None
        except OSError as exc:
            raise UpstreamConnectError(f"cannot connect to {up}: {exc.strerror or exc}") from None
        self.stats.opened += 1
        return conn

    def release(self, conn: Connection) -> None:
        """Return a connection after its response: kept if reusable, else closed."""
        if conn.complete and conn.keep_alive and not conn.closed and conn.error is None and (
            len(self._idle) < self.max_idle
        ):
            self._idle.append(conn)
        else:
            if not conn.closed:
                conn.close()
            self._open -= 1
        if self._waiters:
            self._notify()

    def discard(self, conn: Connection) -> None:
        conn.close()
        self._open -= 1
        self._notify()

    def _notify(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._open -= len(self._idle)
        self._idle.clear()
