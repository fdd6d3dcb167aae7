"""The shadow mirror's own HTTP/1.1 client: pipelined, callback-driven, no task per request.

Mirrored requests need no low latency, only low cost per request. A :class:`Lane` (one
per upstream) keeps a backlog and a few keep-alive :class:`PipeConnection`\\ s; once per
event-loop iteration it writes everything waiting onto the connections, several
requests back to back in one ``write`` (HTTP/1.1 pipelining). Responses come back in
order and complete the oldest outstanding :class:`Call` from the parser's callbacks.
Measured on the proxy bench this costs a fraction of an awaited request per mirror.

Rules that keep pipelining safe:

* only safe methods (GET, OPTIONS, TRACE) are pipelined; anything else — mirrored
  writes, HEAD — is *exclusive*: written on an idle connection, nothing behind it;
* a connection the server ends (``Connection: close`` or a drop) re-sends the safe
  requests it did not answer, once, on another connection; a server that answered
  ``Connection: close`` with requests still queued behind gets no pipelines any more;
* a request's read timeout and its duration count from when the server could start on
  it — sent, and every request ahead of it on the connection answered (servers such as
  uvicorn answer a pipeline one request at a time) — so queueing behind other mirrored
  requests is not charged to the candidate. A request past its timeout fails with
  ``timeout``; the connection is closed and the safe requests behind it are re-sent once.

Answers are read without parser callbacks when they can be: a read that holds whole
``HTTP/1.1`` answers framed by one ``Content-Length`` (no ``Connection`` or
``Transfer-Encoding`` header, not 1xx/204/304, not to HEAD) is split by one regular
expression per answer, its header lines kept as one
:class:`~strangler_proxy.shadow.observation.HeaderBlock`; anything else — and the rest of
a read from the first answer that is not like that — goes through httptools.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import cast

import httptools

from strangler_proxy.forwarding.headers import Header
from strangler_proxy.forwarding.upstream import Upstream
from strangler_proxy.shadow.observation import HeaderBlock

PIPELINED = frozenset({"GET", "OPTIONS", "TRACE"})

_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
# a status line and header lines (a grammar narrower than RFC 9112: CRLF only, no
# obs-fold); group 1 the status, group 2 the header lines
_HEAD = re.compile(
    rb"HTTP/1\.1 ([2-5][0-9][0-9])(?: [\t\x20-\x7e\x80-\xff]*)?\r\n"
    rb"((?:%s:[\t\x20-\x7e\x80-\xff]*\r\n)*)\r\n" % _TOKEN
)
_LENGTH = re.compile(rb"(?:^|\n)content-length:[ \t]*([0-9]{1,15})[ \t]*\r")


class Call:
    """One request to one upstream; ``done(call, status, headers, body, error)`` is called
    exactly once (``status`` None with an error kind when it failed)."""

    __slots__ = ("attempt", "data", "done", "exclusive", "head", "read_timeout", "started",
                 "tag")

    def __init__(
        self,
        data: bytes,
        method: str,
        read_timeout: float,
        done: Callable[[Call, int | None, Sequence[Header], bytes, str | None], None],
        tag: object = None,
    ) -> None:
        self.data = data
        self.exclusive = method not in PIPELINED
        self.head = method == "HEAD"
        self.read_timeout = read_timeout
        self.done = done
        self.tag = tag
        self.attempt = 0
        self.started = 0.0  # time.monotonic() when it reached the head of its connection


class PipeConnection(asyncio.Protocol):
    """A keep-alive connection carrying several :class:`Call`\\ s in order."""

    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.inflight: deque[Call] = deque()
        self.closed = False
        self.answered = 0
        self._status = 0
        self._headers: list[Header] = []
        self._body: list[bytes] = []
        self._size = 0
        self._head_done = False
        self._framed = False
        self._in_parser = False  # httptools holds part of an answer
        # the last head split by the quick path: (head bytes, status, block, length)
        self._last: tuple[bytes, int, HeaderBlock, int] | None = None

    # sending
    def send_from(self, backlog: deque[Call], depth: int, now: float) -> None:
        inflight = self.inflight
        if self.closed or self.transport is None or (inflight and inflight[-1].exclusive):
            return
        out: list[bytes] = []
        while backlog and len(inflight) < depth:
            call = backlog[0]
            if call.exclusive and inflight:
                break
            backlog.popleft()
            call.started = 0.0 if inflight else now
            inflight.append(call)
            out.append(call.data)
            if call.exclusive:
                break
        if out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self._in_parser:
            used = self._whole_answers(data)
            if used:
                if used == len(data):
                    return
                data = data[used:]
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.fail_all("protocol_error")

    def _whole_answers(self, data: bytes) -> int:
        """Complete the calls whose whole answers start ``data`` (see the module doc);
        returns how many bytes that used."""
        inflight = self.inflight
        pos = 0
        end = len(data)
        cap = self.lane.response_cap
        last = self._last
        now = 0.0
        while pos < end and inflight and not self.closed:
            call = inflight[0]
            if call.head:
                break
            if last is not None and data.startswith(last[0], pos):
                head, status, headers, length = last
                start = pos + len(head)
            else:
                m = _HEAD.match(data, pos)
                if m is None:
                    break
                status = int(m.group(1))
                block = m.group(2)
                lower = block.lower()
                found = _LENGTH.findall(lower)
                if (status == 204 or status == 304 or len(found) != 1
                        or lower.count(b"content-length:") != 1
                        or b"transfer-encoding:" in lower or b"connection:" in lower):
                    break
                length = int(found[0])
                if length > cap:
                    break
                start = m.end()
                headers = HeaderBlock(block)
                last = self._last = (data[pos:start], status, headers, length)
            stop = start + length
            if stop > end:
                break
            inflight.popleft()
            if inflight:
                if not now:
                    now = time.monotonic()
                inflight[0].started = now
            self.answered += 1
            call.done(call, status, headers, data[start:stop], None)
            pos = stop
        if pos and self.lane.backlog and not self.closed:
            self.lane.schedule()
        return pos

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        if self.inflight and self._head_done and not self._framed:
            self._finish(keep_alive=False)  # body delimited by the connection's end
        if not self.closed:  # may also be an idle keep-alive close racing a write
            self._retire("closed", stop_pipelining=False)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._in_parser = True

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length" or name == b"transfer-encoding":
            self._framed = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # interim response: the real one follows
            self._headers = []
            self._framed = False
            return
        self._status = status
        self._head_done = True
        if self.inflight and self.inflight[0].head:
            # httptools cannot be told the request was HEAD: the message ends here. HEAD
            # is exclusive, so nothing else is in flight on this connection.
            keep_alive = self.parser.get_http_version() == "1.1" and not any(
                n == b"connection" and b"close" in v.lower() for n, v in self._headers
            )
            self.parser = httptools.HttpResponseParser(self)
            self._finish(keep_alive)

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size <= self.lane.response_cap:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if self._head_done:
            self._finish(self.parser.should_keep_alive())

    # completion
    def _finish(self, keep_alive: bool) -> None:
        status, headers, body, size = self._status, self._headers, self._body, self._size
        self._headers = []
        self._body = []
        self._size = 0
        self._head_done = False
        self._framed = False
        self._in_parser = False
        if not self.inflight:
            self.fail_all("protocol_error")  # an answer nobody asked for
            return
        call = self.inflight.popleft()
        if self.inflight:
            self.inflight[0].started = time.monotonic()
        self.answered += 1
        if size > self.lane.response_cap:
            call.done(call, status, headers, b"", "body_too_large")
        else:
            call.done(call, status, headers, body[0] if len(body) == 1 else b"".join(body), None)
        if not keep_alive:  # the server says it ends here: it does not do pipelines
            self._retire("closed", stop_pipelining=bool(self.inflight))
        elif self.lane.backlog:
            self.lane.schedule()

    def time_out(self) -> None:
        """The oldest call waited past its read timeout: it fails, the connection closes
        and the safe calls behind it go back to the lane once."""
        call = self.inflight.popleft()
        call.done(call, None, [], b"", "timeout")
        self._retire("timeout", stop_pipelining=False)

    def _retire(self, error: str, *, stop_pipelining: bool) -> None:
        """The connection is finished: safe unanswered calls go back to the lane once."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self.lane.dropped(self)
        retry: list[Call] = []
        while self.inflight:
            call = self.inflight.popleft()
            if not call.exclusive and call.attempt == 0:
                call.attempt = 1
                retry.append(call)
            else:
                call.done(call, None, [], b"", error)
        if stop_pipelining:
            self.lane.pipelining = False
        if retry:
            self.lane.backlog.extendleft(reversed(retry))
        if self.lane.backlog:
            self.lane.schedule()

    def fail_all(self, error: str) -> None:
        """Every call on this connection fails with ``error``; the connection closes."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self.lane.dropped(self)
        while self.inflight:
            call = self.inflight.popleft()
            call.done(call, None, [], b"", error)
        if self.lane.backlog:
            self.lane.schedule()


class Lane:
    """Calls to one upstream: a backlog and up to ``max_connections`` pipelined
    connections, each with at most ``depth`` calls in flight."""

    def __init__(
        self,
        upstream: Upstream,
        *,
        max_connections: int = 8,
        depth: int = 16,
        response_cap: int = 1024 * 1024,
        connect_timeout: float = 5.0,
        gather_s: float = 0.005,
    ) -> None:
        self.upstream = upstream
        self.gather_s = gather_s
        self.max_connections = max_connections
        self.depth = depth
        self.response_cap = response_cap
        self.connect_timeout = connect_timeout
        self.pipelining = True
        self.backlog: deque[Call] = deque()
        self.conns: list[PipeConnection] = []
        self.connecting = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._ssl = ssl.create_default_context() if upstream.scheme == "https" else None

    def add(self, call: Call) -> None:
        self.backlog.append(call)
        if not self._scheduled:
            self.schedule()

    def schedule(self) -> None:
        """Write what is waiting ``gather_s`` from now: one write per connection for
        everything offered meanwhile (a write costs more than the request it carries)."""
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(self.gather_s, self.pump)

    def pump(self) -> None:
        self._scheduled = False
        backlog = self.backlog
        if not backlog:
            return
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        depth = self.depth if self.pipelining else 1
        for conn in self.conns:
            conn.send_from(backlog, depth, now)
            if not backlog:
                return
        if len(self.conns) + self.connecting < self.max_connections:
            self.connecting += 1
            task = loop.create_task(self._connect())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        up = self.upstream
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: PipeConnection(self), up.host, up.port, ssl=self._ssl,
                    server_hostname=up.host if self._ssl else None,
                )
        except (TimeoutError, OSError) as exc:
            self.connecting -= 1
            if not self.conns and not self.connecting:  # nothing else will carry them
                kind = "timeout" if isinstance(exc, TimeoutError) else "connect_error"
                self.fail_backlog(kind)
            return
        self.connecting -= 1
        self.conns.append(conn)
        self.pump()

    def fail_backlog(self, error: str) -> None:
        backlog, self.backlog = self.backlog, deque()
        for call in backlog:
            call.done(call, None, [], b"", error)

    def dropped(self, conn: PipeConnection) -> None:
        if conn in self.conns:
            self.conns.remove(conn)

    def expire(self, now: float) -> None:
        """Time out the calls that have waited at the head of a connection past their
        read timeout (``now`` from time.monotonic())."""
        for conn in list(self.conns):
            inflight = conn.inflight
            if inflight and now - inflight[0].started > inflight[0].read_timeout:
                conn.time_out()

    def in_flight(self) -> int:
        return sum(len(c.inflight) for c in self.conns)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for conn in list(self.conns):
            conn.closed = True
            if conn.transport is not None:
                conn.transport.close()
        self.conns.clear()
        self.backlog.clear()
