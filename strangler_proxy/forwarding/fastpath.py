"""The forwarding fast path: ordinary requests forwarded from uvicorn's protocol
callbacks, without ASGI, tasks or futures.

:class:`~strangler_proxy.forwarding.server_protocol.ProxyHttpProtocol` parses the
request with uvicorn's httptools parser and asks :meth:`FastPath.exchange` whether it can
take it. Requests it cannot take safely go to the ASGI app (``app.py`` → ``handler.py``)
unchanged: the admin prefix, upgrades, ``Expect: 100-continue``, chunked or
large (> :data:`FAST_BODY_MAX`) request bodies, oversized or contradictory headers (the
handler answers 431/413/400).

An :class:`Exchange` holds one request. Once its (small, buffered) body is complete it
takes an idle pooled upstream connection (or connects in a task), writes the request and
becomes the connection's :class:`~strangler_proxy.forwarding.upstream.ResponseSink`: the
upstream parser's callbacks build the client's response head and body frames, and each
upstream read ends in one write to the client. When the client's write buffer is full,
upstream reading pauses until it drains. The rules — headers, ``decide()``, fallback and
breaker, stale-connection retry, errors, metrics, access log, shadow hand-off — are the
handler's, through the same functions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import NamedTuple, Protocol
from urllib.parse import unquote

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from strangler_proxy.forwarding.breaker import Breaker
from strangler_proxy.forwarding.errors import UpstreamClosed, UpstreamError
from strangler_proxy.forwarding.facts import PlanNeeds, facts_from_parts
from strangler_proxy.forwarding.forward import IDEMPOTENT, RequestBody, error_body, request_head
from strangler_proxy.forwarding.handler import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    MIRROR_BODY_CAP,
    Handler,
    Target,
    with_host,
)
from strangler_proxy.forwarding.headers import (
    TRACE_IDS,
    VIA,
    Header,
    InvalidRequestHeaders,
    client_response_headers,
    upstream_request_headers,
)
from strangler_proxy.forwarding.mirror import Gate
from strangler_proxy.forwarding.quickhead import SimpleRequest, SimpleResponse, field_lines
from strangler_proxy.forwarding.upstream import DEADLINES, Connection
from strangler_proxy.forwarding.writebatch import WriteBatch
from strangler_proxy.plan.model import Plan, Stage
from strangler_proxy.routing import Decision, decide
from strangler_proxy.shadow.observation import HeaderBlock

FAST_BODY_MAX = 64 * 1024
"""Largest request body (by Content-Length) the fast path buffers; larger ones stream
through the ASGI path."""


DECISION_CACHE = 4096
"""Decisions cached per (method, path) for the plan being served; cleared when full."""


def fixed_by_route(plan: Plan, decision: Decision) -> bool:
    """True when ``decide()`` gives this decision to every request with the same method
    and path: nothing about the client (canary cohorts) or the request's sample roll
    (shadow sampling, spreading over several service upstreams) can change it."""
    if decision.service is None:
        return True
    service = plan.services[decision.service]
    if decision.stage is Stage.CANARY:
        return False
    if decision.stage is Stage.SHADOW:  # the roll decides unless every roll agrees
        sample, noise = service.shadow.sample, service.shadow.noise_sample
        if sample not in (0.0, 1.0) or (sample == 1.0 and noise not in (0.0, 1.0)):
            return False
    return len(service.upstreams) == 1


class Route(NamedTuple):
    """What the fast path needs of a routing decision (cached with it)."""

    decision: Decision
    method: str
    primary: Target
    shadow: Target | None  # the decision's shadow upstream, if any
    gate: Gate | None  # and how its mirroring is doing


class Client(Protocol):
    """What an :class:`Exchange` needs from the client connection (the uvicorn protocol)."""

    active: Exchange | None
    loop: asyncio.AbstractEventLoop
    simple_block: bytes | None
    simple_prefix: bytes

    @property
    def write_paused(self) -> bool: ...

    def write(self, data: bytes) -> None: ...

    def response_done(self, exchange: Exchange) -> None: ...


class _NoEvent:
    """uvicorn's protocol calls ``cycle.message_event.set()``; an exchange needs none."""

    __slots__ = ()

    def set(self) -> None:
        return None


_NO_EVENT = _NoEvent()


class FastPath:
    """Per-process state shared by every fast exchange: the ASGI handler's pools,
    breakers, metrics, mirror and access log."""

    def __init__(self, handler: Handler, plan: Callable[[], Plan], admin_prefix: str,
                 *, enabled: bool = True) -> None:
        self.handler = handler
        self.plan = plan  # the plan being served now (read once per request)
        self.enabled = enabled
        self.admin_prefix = admin_prefix
        self._admin = admin_prefix.encode()
        self._needs_plan: Plan | None = None
        self._needs = PlanNeeds(shadow=True, canary=True)
        self._routes: dict[tuple[bytes, bytes], Route] = {}
        self._targets: dict[int, tuple[Decision, Target, Target | None]] = {}
        self._header_limit = 0  # of the plan being served (see _adopt)
        self._simple = False  # whether the simple path may take requests under that plan
        self.batch = WriteBatch()

    def _adopt(self, plan: Plan) -> None:
        """Start serving ``plan``: what was derived from the previous one is dropped."""
        settings = plan.proxy
        self._needs_plan, self._needs = plan, PlanNeeds.of(plan)
        self._routes = {}
        self._targets = {}
        self._header_limit = MAX_HEADER_BYTES or settings.max_header_bytes
        self._simple = settings.preserve_host  # else Host is rewritten: the general path

    def targets(self, decision: Decision) -> tuple[Target, Target | None]:
        """The primary and shadow targets of a decision, remembered per decision object
        (``handler.target`` hashes a frozen plan dataclass on every call)."""
        found = self._targets.get(id(decision))
        if found is not None and found[0] is decision:  # held here, so its id is unique
            return found[1], found[2]
        handler = self.handler
        primary = handler.target(decision.target_name, decision.target)
        shadow = None
        if decision.shadow is not None:
            shadow = handler.target(decision.shadow_name or decision.service or "-",
                                    decision.shadow)
        if len(self._targets) >= DECISION_CACHE:
            self._targets.clear()
        self._targets[id(decision)] = (decision, primary, shadow)
        return primary, shadow

    def exchange(
        self,
        client: Client,
        method: bytes,
        url: bytes,
        headers: list[Header],
        header_bytes: int,
        keep_alive: bool,
        client_ip: bytes,
        client_addr: str | None,
        scheme: bytes,
    ) -> Exchange | None:
        """An exchange for this request, or None when the ASGI path must answer it."""
        plan = self.plan()
        if plan is not self._needs_plan:
            self._adopt(plan)
        settings = plan.proxy
        if header_bytes > self._header_limit:
            return None
        try:
            parsed = httptools.parse_url(url)
        except httptools.HttpParserInvalidURLError:
            return None
        raw_path: bytes | None = parsed.path
        if not raw_path or raw_path[0] != 47:  # "/"
            return None
        if self._is_admin(raw_path):
            return None
        try:
            # without Host (fine in HTTP/1.0) the handler decides by the version
            rh = upstream_request_headers(headers, client_ip=client_ip, scheme=scheme,
                                          require_host=True)
        except InvalidRequestHeaders:
            return None
        length = rh.content_length
        if rh.chunked or (length is not None and (
            length > FAST_BODY_MAX
            or length > (settings.max_body_bytes if MAX_BODY_BYTES is None else MAX_BODY_BYTES)
        )):
            return None
        query: bytes = parsed.query or b""
        rid = rh.request_id
        route = self._routes.get((method, raw_path))
        if route is None:
            route = self._route(plan, method, raw_path, query, headers, client_addr, rid)
        self.handler.metrics.paths["fast"] += 1
        # httptools reads "/a?" as "/a" with no query: keep the "?" as the client sent it
        path_qs = (raw_path + b"?" + query if query
                   else raw_path + b"?" if url.endswith(b"?") else raw_path)
        exchange = Exchange(self, client, plan, route, raw_path, query, path_qs, rid,
                            keep_alive, client_addr)
        exchange.headers = rh.headers
        if rh.host is None:
            exchange.has_host = False
        return exchange

    def _is_admin(self, raw_path: bytes) -> bool:
        """The admin prefix, also percent-encoded: never forwarded, the ASGI app answers."""
        return raw_path.startswith(self._admin) or (
            b"%" in raw_path and unquote(raw_path.decode("latin-1")).startswith(self.admin_prefix)
        )

    def _route(
        self, plan: Plan, method: bytes, raw_path: bytes, query: bytes, headers: list[Header],
        client_addr: str | None, rid: bytes,
    ) -> Route:
        """``decide()`` for a request and its targets, remembered per (method, path) when
        nothing but those can change the decision (see :func:`fixed_by_route`)."""
        name = method.decode("ascii")
        decision = decide(plan, facts_from_parts(
            name, raw_path, query, headers, client_addr,
            rid.decode() if self._needs.shadow else "", self._needs,
        ))
        primary, shadow = self.targets(decision)
        gate = None if shadow is None else self.handler.mirror.gate(
            decision.service or "-", shadow.upstream)
        route = Route(decision, name, primary, shadow, gate)
        if fixed_by_route(plan, decision):
            if len(self._routes) >= DECISION_CACHE:
                self._routes.clear()
            self._routes[(method, raw_path)] = route
        return route

    def simple_exchange(
        self, client: Client, request: SimpleRequest, size: int, client_ip: bytes,
        client_addr: str | None, scheme: bytes,
    ) -> Exchange | None:
        """An exchange for a request :func:`~.quickhead.simple_request` recognised, or
        None when it needs the general path (admin paths, the header limit,
        ``preserve_host: false``)."""
        plan = self.plan()
        if plan is not self._needs_plan:
            self._adopt(plan)
        if size > self._header_limit or not self._simple:
            return None
        method, target, _, host, block, keep_alive = request
        mark = target.find(b"?")
        raw_path, query = (target, b"") if mark < 0 else (target[:mark], target[mark + 1 :])
        if raw_path.startswith(self._admin) or (b"%" in raw_path and self._is_admin(raw_path)):
            return None
        rid, span = TRACE_IDS.take()
        route = self._routes.get((method, raw_path))
        if route is None:  # canary cohorts and sample rolls read the client's headers
            route = self._route(plan, method, raw_path, query, field_lines(request.block),
                                client_addr, rid)
        self.handler.metrics.paths["fast"] += 1
        exchange = Exchange(self, client, plan, route, raw_path, query, target, rid,
                            keep_alive, client_addr)
        if client.simple_block is not block:  # the same for the connection's next requests
            client.simple_block = block
            client.simple_prefix = block + (
                b"x-forwarded-for: %s\r\nx-forwarded-proto: %s\r\nx-forwarded-host: %s\r\n"
                b"via: %s\r\n"
            ) % (client_ip, scheme, host, VIA)
        exchange._header_block = b"%sx-request-id: %s\r\ntraceparent: 00-%s-%s-01\r\n" % (
            client.simple_prefix, rid, rid, span)
        return exchange


class Exchange:
    """One request on the fast path; the client protocol's current "cycle".

    Per-request state starts as the class defaults below, so creating an exchange only
    sets what every request has (most requests never touch the rest).
    """

    message_event = _NO_EVENT

    body = b""
    body_parts: list[bytes] | None = None
    body_complete = False
    runnable = False
    response_complete = False
    disconnected = False
    conn: Connection | None = None
    target: Target | None = None
    breaker: Breaker | None = None
    retried = False
    status = 0
    chunked = False
    close_delimited = False  # an HTTP/1.0 client: no chunked encoding, unframed bodies
    # end with the connection, keep-alive only when it asked and the body has a length
    no_body = False
    paused = False
    capture: list[bytes] | None = None
    captured = 0
    shadow: Target | None = None  # set when this exchange is mirrored
    response_headers: Sequence[Header] = ()  # replaced, never mutated
    task: asyncio.Task[None] | None = None
    headers: list[Header] | None = None  # None: only the header block is known
    _header_block: bytes | None = None
    has_host = True

    def __init__(
        self,
        fast: FastPath,
        client: Client,
        plan: Plan,
        route: Route,
        raw_path: bytes,
        query: bytes,
        path_qs: bytes,
        rid: bytes,
        keep_alive: bool,
        client_addr: str | None,
    ) -> None:
        self.fast = fast
        self.client = client
        self.plan = plan  # the plan this request started under, whatever reloads happen
        self.decision, self.method, self.primary, self.shadow_target, self.gate = route
        self.raw_path = raw_path
        self.query = query
        # what goes upstream after the upstream's base path: byte-exact as received
        self.path_qs = path_qs
        self.rid = rid
        self.keep_alive = keep_alive
        self.client_addr = client_addr
        self.started = perf_counter()
        self.pending: list[bytes] = []

    def request_headers(self) -> list[Header]:
        """The upstream request headers as pairs (built from the block when the request
        came the simple way)."""
        headers = self.headers
        if headers is None:
            assert self._header_block is not None
            headers = self.headers = field_lines(self._header_block)
        return headers

    # client side ---------------------------------------------------------------------
    def start(self) -> None:
        """The request is complete and its turn has come on the connection."""
        if self.disconnected or self.response_complete:
            return
        self.client.active = self
        parts = self.body_parts
        if parts:
            self.body = parts[0] if len(parts) == 1 else b"".join(parts)
        decision = self.decision
        primary = self.primary
        if decision.fallback is not None:
            handler = self.fast.handler
            breaker = handler.breaker_for(primary, decision)
            if not breaker.allow(handler.clock()):
                self.fall_back("breaker_open")
                return
            self.breaker = breaker
        self.send(primary)

    def client_lost(self) -> None:
        """The client connection closed while this exchange was active."""
        self.disconnected = True
        if self.response_complete:
            return
        self.response_complete = True
        self._drop_conn()
        breaker = self.breaker
        if breaker is not None:
            self.breaker = None
            breaker.release()
        if self.shadow is not None:
            self.fast.handler.mirror.release(self.shadow.upstream)
        if self.status and self.target is not None:
            self._record(self.target.name, "client_disconnected")

    def client_paused(self) -> None:
        self.paused = True
        conn = self.conn
        if conn is not None and conn.transport is not None:
            conn.transport.pause_reading()
            DEADLINES.discard(conn)

    def client_resumed(self) -> None:
        if not self.paused:
            return
        self.paused = False
        conn = self.conn
        if conn is not None and conn.transport is not None and not conn.closed:
            conn.transport.resume_reading()
            assert self.target is not None
            self._watch(conn)

    # upstream side -------------------------------------------------------------------
    def send(self, target: Target, *, fresh: bool = False) -> None:
        self.target = target
        up = target.upstream
        body = self.body
        if self.has_host and self.plan.proxy.preserve_host:
            block = self._header_block
            if block is None:  # the same for every upstream this request may try
                block = self._header_block = b"".join(
                    [b"%s: %s\r\n" % header for header in self.request_headers()]
                )
            method = self.method
            length = b"content-length: %d\r\n" % len(body) if body or method not in (
                "GET", "HEAD", "OPTIONS", "DELETE", "TRACE") else b""
            self.request = b"%s %s%s HTTP/1.1\r\n%s%s\r\n%s" % (
                method.encode(), up.base_path, self.path_qs, block, length, body
            )
        else:
            headers = with_host(self.request_headers(), up, self.plan.proxy.preserve_host)
            self.request = request_head(
                self.method.encode(), up.base_path + self.path_qs, headers,
                RequestBody(body, True),
            ) + body
        conn = None if fresh else target.pool.take_idle()
        if conn is not None:
            self.attach(conn)
        else:
            self.task = self.client.loop.create_task(self._connect(target, fresh))

    async def _connect(self, target: Target, fresh: bool) -> None:
        try:
            conn = await target.pool.acquire(target.timeouts.connect, fresh=fresh)
        except UpstreamError as exc:
            if not self.disconnected and self.target is target:
                self.task = None
                self.upstream_failed(exc)
            return
        self.task = None
        if self.disconnected or self.target is not target:
            target.pool.discard(conn)
            return
        self.attach(conn)

    def attach(self, conn: Connection) -> None:
        target = self.target
        assert target is not None
        self.conn = conn
        conn.begin(head_request=self.method == "HEAD")
        transport = conn.transport
        conn.sink = self
        if transport is None or transport.is_closing() or conn.closed:
            self.upstream_failed(UpstreamClosed("upstream closed the connection"))
            return
        conn.waiting_for = "response headers"
        loop = self.client.loop
        self.fast.batch.write(loop, transport, self.request)
        # _watch, inlined (per request)
        DEADLINES.waiting[conn] = loop.time() + target.timeouts.read
        if DEADLINES.sweeping is not loop:
            DEADLINES.start(loop)

    def upstream_head(self) -> None:
        conn = self.conn
        assert conn is not None
        status = conn.status
        if self.breaker is not None and self._falls_back(status):
            self._drop_conn()  # its body is not wanted
            self.fall_back("5xx")
            return
        self.status = status
        decision = self.decision
        headers = client_response_headers(conn.headers, status=status, request_id=self.rid)
        if decision.set_cookie is not None:
            headers.append((b"set-cookie", decision.set_cookie.header_value().encode()))
        pending = self.pending
        pending.append(STATUS_LINE.get(status) or b"HTTP/1.1 %d \r\n" % status)
        pending += [b"%s: %s\r\n" % header for header in headers]
        no_body = self.method == "HEAD" or status == 204 or status == 304
        self.no_body = no_body
        if not no_body and not conn.has_length and not self.close_delimited:
            self.chunked = True
            pending.append(b"transfer-encoding: chunked\r\n")
        pending += (self._connection_header(no_body or conn.has_length or self.chunked),
                    b"\r\n")
        gate = self.gate
        if gate is not None:
            if gate.shut is not None and not self.body:  # _want_mirror's answer, inlined
                gate.turned += 1
            elif self._want_mirror(gate):
                self.response_headers = conn.headers
        conn.waiting_for = "response body"

    def upstream_whole(self, response: SimpleResponse) -> None:
        """The whole response arrived in one read with a head that passes as received
        (:func:`~.quickhead.simple_response`): one write to the client."""
        conn = self.conn
        target = self.target
        assert conn is not None and target is not None
        status = response.status
        falls_back = self.breaker is not None and self._falls_back(status)
        self._release_conn(conn, target)  # the response was read whole: reusable
        if falls_back:
            self.fall_back("5xx")
            return
        self.status = status
        out = [STATUS_LINE.get(status) or b"HTTP/1.1 %d \r\n" % status, response.block,
               b"via: %s\r\nx-request-id: %s\r\n" % (VIA, self.rid)]
        decision = self.decision
        if decision.set_cookie is not None:
            out.append(b"set-cookie: %s\r\n" % decision.set_cookie.header_value().encode())
        if not self.keep_alive or self.close_delimited:
            out.append(self._connection_header(True))
        out += (b"\r\n", response.body)
        self.client.write(b"".join(out))
        gate = self.gate
        if gate is not None:
            if gate.shut is not None and not self.body:  # _want_mirror's answer, inlined
                gate.turned += 1
            elif self._want_mirror(gate):
                self.response_headers = HeaderBlock(response.block)
                self._capture(response.body)
        self._finish(target.name, None)

    def _falls_back(self, status: int) -> bool:
        """Tell the breaker how the upstream answered; True when a 5xx is to be retried
        on the monolith (the decision's fallback covers 5xx)."""
        breaker = self.breaker
        assert breaker is not None
        self.breaker = None
        if status < 500:
            breaker.success()
            return False
        breaker.failure(self.fast.handler.clock())
        return "5xx" in self.decision.fallback_on

    def _release_conn(self, conn: Connection, target: Target) -> None:
        self.conn = None
        DEADLINES.waiting.pop(conn, None)
        conn.sink = None
        target.pool.release(conn)

    def _want_mirror(self, gate: Gate) -> bool:
        """Whether this exchange is mirrored (then its response body is captured): not
        when its body is too large, nor while the gate is shut, nor when the mirror
        turns it away."""
        shadow = self.shadow_target
        assert shadow is not None
        handler = self.fast.handler
        service = self.decision.service or "-"
        if len(self.body) > MIRROR_BODY_CAP:
            handler.metrics.shadow[(service, "skipped_too_large")] += 1
            return False
        if gate.shut is not None:
            gate.turned += 1
            return False
        if not handler.mirror.accepting(service, shadow.upstream, gate):
            return False
        self.shadow = shadow
        self.capture = []
        return True

    def _capture(self, data: bytes) -> None:
        """Keep response bytes for the mirror, up to its cap (then give up on it)."""
        capture = self.capture
        if capture is not None:
            self.captured += len(data)
            if self.captured > MIRROR_BODY_CAP:
                self.capture = None
            else:
                capture.append(data)

    def upstream_body(self, data: bytes) -> None:
        if self.capture is not None:
            self._capture(data)
        if self.no_body:
            return
        if self.chunked:
            self.pending += (b"%x\r\n" % len(data), data, b"\r\n")
        else:
            self.pending.append(data)

    def upstream_flush(self) -> None:
        pending = self.pending
        if pending:
            self.client.write(b"".join(pending))
            pending.clear()
        conn = self.conn
        if conn is None or self.paused:
            return
        if self.client.write_paused:
            self.client_paused()
        else:
            assert self.target is not None
            self._watch(conn)

    def upstream_done(self) -> None:
        conn = self.conn
        target = self.target
        assert conn is not None and target is not None
        self._release_conn(conn, target)
        pending = self.pending
        if self.chunked:
            pending.append(b"0\r\n\r\n")
        self.client.write(b"".join(pending))
        pending.clear()
        self._finish(target.name, None)

    def upstream_failed(self, error: UpstreamError) -> None:
        conn = self.conn
        target = self.target
        assert target is not None
        self._drop_conn()
        handler = self.fast.handler
        metrics = handler.metrics
        if self.status:  # the client has (or is about to get) the head: abort it
            kind = f"{error.kind}_mid_body"
            metrics.upstream_errors[(target.name, kind)] += 1
            if self.pending:
                self.client.write(b"".join(self.pending))
                self.pending.clear()
            self.keep_alive = False
            self._finish(target.name, kind)
            return
        if (isinstance(error, UpstreamClosed) and conn is not None and conn.reused
                and not conn.received and not self.retried and self.method in IDEMPOTENT):
            self.retried = True  # a kept-alive connection the upstream had already closed
            target.pool.stats.stale_retries += 1
            self.send(target, fresh=True)
            return
        metrics.upstream_errors[(target.name, error.kind)] += 1
        breaker = self.breaker
        if breaker is not None:
            self.breaker = None
            breaker.failure(handler.clock())
            kind = error.kind if error.kind in ("connect_error", "timeout") else "5xx"
            if kind in self.decision.fallback_on:
                self.fall_back(kind)
                return
        self._respond_error(target.name, error.status, error.kind, str(error))

    def fall_back(self, reason: str) -> None:
        decision = self.decision
        assert decision.fallback is not None
        handler = self.fast.handler
        handler.metrics.fallbacks[(decision.service or "-", reason)] += 1
        self.retried = False
        self.send(handler.target("monolith", decision.fallback))

    # endings -------------------------------------------------------------------------
    def _watch(self, conn: Connection) -> None:
        """Arm the read timeout for the next bytes from the upstream."""
        loop = self.client.loop
        assert self.target is not None
        DEADLINES.add(conn, loop.time() + self.target.timeouts.read, loop)

    def _drop_conn(self) -> None:
        conn = self.conn
        if conn is not None:
            self.conn = None
            DEADLINES.discard(conn)
            conn.sink = None
            assert self.target is not None
            self.target.pool.discard(conn)

    def _connection_header(self, framed: bool) -> bytes:
        """The response's word on the connection: ``close``; or, to an HTTP/1.0 client
        that asked for it, ``keep-alive`` — possible only when the body is ``framed``
        (an HTTP/1.0 body without a length ends with the connection)."""
        if self.keep_alive and self.close_delimited:
            if framed:
                return b"connection: keep-alive\r\n"
            self.keep_alive = False
        return b"" if self.keep_alive else b"connection: close\r\n"

    def _respond_error(self, target: str, status: int, error: str, message: str) -> None:
        body = error_body(error, message, self.rid)
        out = [STATUS_LINE[status], b"content-type: application/json\r\ncontent-length: ",
               str(len(body)).encode(), b"\r\nx-request-id: ", self.rid, b"\r\n"]
        cookie = self.decision.set_cookie
        if cookie is not None:
            out += (b"set-cookie: ", cookie.header_value().encode(), b"\r\n")
        out += (self._connection_header(True), b"\r\n", body)
        self.client.write(b"".join(out))
        self.status = status
        self._finish(target, error)

    def _record(self, target: str, error: str | None) -> None:
        self.fast.handler.record(
            self.method, self.raw_path, self.client_addr, self.decision.service or "-", target,
            self.status, self.started, self.rid, error,
        )

    def _finish(self, target: str, error: str | None) -> None:
        self.response_complete = True
        self.fast.handler.record(
            self.method, self.raw_path, self.client_addr, self.decision.service or "-", target,
            self.status, self.started, self.rid, error,
        )
        shadow = self.shadow
        if shadow is not None:
            captured = self.capture
            handler = self.fast.handler
            if captured is None or error is not None:
                if captured is None:
                    handler.metrics.shadow[(self.decision.service or "-", "skipped_too_large")] += 1
                handler.mirror.release(shadow.upstream)
            else:
                handler.offer(
                    self.decision, shadow, self.rid.decode(), self.method, self.path_qs,
                    self.raw_path, self.query,
                    # the forwarded header lines as they went (split only if the mirror must)
                    self.request_headers() if self._header_block is None
                    else HeaderBlock(self._header_block),
                    self.body, self.status,
                    self.response_headers, b"".join(captured), self.started, self.plan,
                )
        self.client.response_done(self)
