"""One client request, end to end: limits → ``decide()`` → forward (with fallback and
breaker) → relay → shadow hand-off → metrics and access log.

The plan reference is read once per request, so a reload never changes the routing of a
request already in flight.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.types import Receive, Scope, Send

from strangler_proxy.forwarding.accesslog import AccessLog
from strangler_proxy.forwarding.breaker import Breaker
from strangler_proxy.forwarding.errors import UpstreamError
from strangler_proxy.forwarding.facts import PlanNeeds, request_facts
from strangler_proxy.forwarding.forward import (
    BodyTooLarge,
    ClientDisconnected,
    RequestBody,
    Timeouts,
    open_response,
    read_request_body,
    relay,
    request_head,
    send_error,
)
from strangler_proxy.forwarding.headers import (
    Header,
    InvalidRequestHeaders,
    client_response_headers,
    new_request_id,
    upstream_request_headers,
)
from strangler_proxy.forwarding.mirror import Mirror, MirrorJob
from strangler_proxy.forwarding.upstream import Connection, Pool, Upstream
from strangler_proxy.metrics import ProxyMetrics
from strangler_proxy.plan.model import Plan
from strangler_proxy.plan.model import Upstream as PlanUpstream
from strangler_proxy.routing import Decision, decide

log = logging.getLogger("strangler.proxy")

def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer number of bytes, got {value!r}") from None


# Largest request or response body mirrored to a shadow candidate.
MIRROR_BODY_CAP = _env_int("STRANGLER_SHADOW_BODY_CAP") or 1024 * 1024
EMPTY_QUERY = "strangler.empty_query"
"""ASGI scope extension set by the proxy's server protocol when the request target ended
in a bare ``?`` (the scope's ``query_string`` cannot tell ``/a?`` from ``/a``)."""
# Environment overrides of the plan's proxy.max_header_bytes / proxy.max_body_bytes.
MAX_HEADER_BYTES = _env_int("STRANGLER_MAX_HEADER_BYTES")
MAX_BODY_BYTES = _env_int("STRANGLER_MAX_BODY_BYTES")


def with_host(headers: list[Header], up: Upstream, preserve_host: bool) -> list[Header]:
    """The Host header the upstream gets: the client's (preserved) or the upstream's."""
    if not preserve_host:
        headers = [(n, v) for n, v in headers if n != b"host"]
        headers.append((b"host", up.netloc))
    elif not any(n == b"host" for n, _ in headers):
        headers = [*headers, (b"host", up.netloc)]
    return headers


@dataclass(slots=True)
class Target:
    """A plan upstream resolved to its pool and timeouts."""

    name: str
    upstream: Upstream
    pool: Pool
    timeouts: Timeouts


class Handler:
    def __init__(
        self,
        plan: Callable[[], Plan],
        *,
        metrics: ProxyMetrics,
        mirror: Mirror,
        access_log: AccessLog | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plan = plan
        self.metrics = metrics
        self.mirror = mirror
        self.access_log = access_log
        self.clock = clock
        self.pools: dict[str, Pool] = {}
        self.breakers: dict[str, Breaker] = {}
        self._targets: dict[tuple[str, PlanUpstream], Target] = {}
        self._needs_plan: Plan | None = None
        self._needs = PlanNeeds(shadow=True, canary=True)

    def target(self, name: str, up: PlanUpstream) -> Target:
        """The pool and timeouts for a plan upstream (one pool per URL, never per plan)."""
        found = self._targets.get((name, up))
        if found is None:
            origin = Upstream.from_url(up.url)
            pool = self.pools.get(up.url)
            if pool is None:
                pool = self.pools[up.url] = Pool(origin)
            found = Target(name, origin, pool, Timeouts(up.connect_timeout, up.read_timeout))
            self._targets[(name, up)] = found
        return found

    def breaker_states(self) -> dict[str, str]:
        return {url: b.state for url, b in self.breakers.items()}

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        self.metrics.paths["asgi"] += 1
        plan = self.plan()
        settings = plan.proxy
        headers: list[Header] = scope["headers"]
        method: str = scope["method"]
        client = scope.get("client")
        client_ip = client[0].encode() if client else b"unknown"
        size = 0
        for name, value in headers:
            size += len(name) + len(value) + 4
        max_header = MAX_HEADER_BYTES or settings.max_header_bytes
        if size > max_header:
            await self._reject(send, 431, "header_too_large",
                               f"request headers exceed {max_header} bytes",
                               new_request_id(), scope, started)
            return
        try:
            rh = upstream_request_headers(
                headers, client_ip=client_ip, scheme=scope["scheme"].encode(),
                require_host=scope.get("http_version") == "1.1",
            )
        except InvalidRequestHeaders as exc:
            await self._reject(send, 400, "bad_request", str(exc), new_request_id(), scope, started)
            return
        rid = rh.request_id
        rid_text = rid.decode()
        if plan is not self._needs_plan:
            self._needs_plan, self._needs = plan, PlanNeeds.of(plan)
        decision = decide(plan, request_facts(scope, rid_text, self._needs))
        buffered = decision.shadow is not None or decision.fallback is not None
        try:
            body = await read_request_body(
                receive,
                content_length=rh.content_length,
                chunked=rh.chunked,
                limit=settings.max_body_bytes if MAX_BODY_BYTES is None else MAX_BODY_BYTES,
                buffer_up_to=MIRROR_BODY_CAP if buffered else 0,
            )
        except BodyTooLarge as exc:
            await self._reject(send, 413, "body_too_large", str(exc), rid, scope, started)
            return
        except ClientDisconnected:
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        qs: bytes = scope["query_string"]
        path_qs = raw_path + b"?" + qs if qs else (
            raw_path + b"?" if EMPTY_QUERY in scope.get("extensions", ()) else raw_path)
        fwd_headers = rh.headers
        service = decision.service or "-"
        primary = self.target(decision.target_name, decision.target)
        extra: list[Header] = []
        if decision.set_cookie is not None:
            extra.append((b"set-cookie", decision.set_cookie.header_value().encode()))
        try:
            conn, used = await self._open(decision, primary, method, path_qs, fwd_headers, body,
                                          settings.preserve_host, service)
        except BodyTooLarge as exc:
            await self._reject(send, 413, "body_too_large", str(exc), rid, scope, started)
            return
        except ClientDisconnected:
            return
        except UpstreamError as exc:
            status = exc.status
            self.metrics.upstream_errors[(primary.name, exc.kind)] += 1
            await send_error(send, status, exc.kind, str(exc), rid, extra)
            self._done(scope, service, primary.name, status, started, rid, exc.kind)
            return
        status = conn.status
        out = client_response_headers(conn.headers, status=status, request_id=rid)
        if extra:
            out += extra
        shadow: Target | None = None
        mirror = False
        if decision.shadow is not None:
            shadow = self.target(decision.shadow_name or service, decision.shadow)
            if not body.complete or len(body.prefix) > MIRROR_BODY_CAP:
                self.metrics.shadow[(service, "skipped_too_large")] += 1
            else:  # asked before capturing: a full queue or a down candidate costs nothing
                mirror = self.mirror.accepting(service, shadow.upstream)
        try:
            captured = await relay(
                conn, used.pool, send, receive, status=status, headers=out,
                timeouts=used.timeouts, capture_limit=MIRROR_BODY_CAP if mirror else -1,
            )
        except UpstreamError as exc:
            # the client already has the head: the server aborts its connection
            self.metrics.upstream_errors[(used.name, f"{exc.kind}_mid_body")] += 1
            self._done(scope, service, used.name, status, started, rid, f"{exc.kind}_mid_body")
            raise
        self._done(scope, service, used.name, status, started, rid,
                   "client_disconnected" if conn.client_gone else None)
        if mirror and shadow is not None:
            if captured.captured is None:
                self.metrics.shadow[(service, "skipped_too_large")] += 1
                self.mirror.release(shadow.upstream)
            else:
                self.offer(decision, shadow, rid_text, method, path_qs, raw_path, qs,
                           fwd_headers, body.prefix, status, conn.headers, captured.captured,
                           started, plan)

    async def _open(
        self,
        decision: Decision,
        primary: Target,
        method: str,
        path_qs: bytes,
        headers: list[Header],
        body: RequestBody,
        preserve_host: bool,
        service: str,
    ) -> tuple[Connection, Target]:
        fallback_to = decision.fallback
        if fallback_to is None or not body.complete:
            conn = await self._request(primary, method, path_qs, headers, body, preserve_host)
            return conn, primary
        breaker = self.breaker_for(primary, decision)
        reason: str | None = None
        if not breaker.allow(self.clock()):
            reason = "breaker_open"
        else:
            try:
                conn = await self._request(primary, method, path_qs, headers, body, preserve_host)
            except UpstreamError as exc:
                breaker.failure(self.clock())
                self.metrics.upstream_errors[(primary.name, exc.kind)] += 1
                kind = exc.kind if exc.kind in ("connect_error", "timeout") else "5xx"
                if kind not in decision.fallback_on:
                    raise
                reason = kind
            except BaseException:
                breaker.release()
                raise
            else:
                if conn.status >= 500 and "5xx" in decision.fallback_on:
                    breaker.failure(self.clock())
                    primary.pool.discard(conn)
                    reason = "5xx"
                else:
                    if conn.status >= 500:
                        breaker.failure(self.clock())
                    else:
                        breaker.success()
                    return conn, primary
        self.metrics.fallbacks[(service, reason)] += 1
        monolith = self.target("monolith", fallback_to)
        conn = await self._request(monolith, method, path_qs, headers, body, preserve_host)
        return conn, monolith

    async def _request(
        self,
        target: Target,
        method: str,
        path_qs: bytes,
        headers: list[Header],
        body: RequestBody,
        preserve_host: bool,
    ) -> Connection:
        up = target.upstream
        headers = with_host(headers, up, preserve_host)
        head = request_head(method.encode(), up.base_path + path_qs, headers, body)
        return await open_response(target.pool, method, head, body, target.timeouts)

    def offer(
        self,
        decision: Decision,
        shadow: Target,
        rid: str,
        method: str,
        path_qs: bytes,
        raw_path: bytes,
        query: bytes,
        headers: Sequence[Header],
        body: bytes,
        status: int,
        response_headers: Sequence[Header],
        primary_body: bytes,
        started: float,
        plan: Plan,
    ) -> None:
        """Hand a finished primary exchange to the shadow mirror (both paths use this).

        ``headers`` and ``response_headers`` are never mutated afterwards (a connection
        replaces its list); either may be a
        :class:`~strangler_proxy.shadow.observation.HeaderBlock` (the header lines as
        they went or came), which the mirror forwards without splitting."""
        route = decision.route
        monolith: Upstream | None = None
        monolith_timeouts = shadow.timeouts  # unused without a second monolith call
        if decision.noise_sample:
            second = self.target("monolith", plan.monolith)
            monolith, monolith_timeouts = second.upstream, second.timeouts
        # positional: MirrorJob's field order (keywords cost ~1 µs per mirrored request)
        self.mirror.offer(MirrorJob(
            decision.service or "-", route.path_template if route else "", method, path_qs,
            raw_path, query, headers, body, rid, time.time(), status, response_headers,
            primary_body, time.perf_counter() - started, shadow.upstream, shadow.timeouts,
            monolith, monolith_timeouts, decision.mirror_write,
        ))

    def breaker_for(self, primary: Target, decision: Decision) -> Breaker:
        breaker = self.breakers.get(str(primary.upstream))
        if breaker is None:
            policy = decision.fallback_policy
            breaker = self.breakers[str(primary.upstream)] = Breaker(
                threshold=policy.breaker_failures if policy else 5,
                cooldown_s=policy.breaker_reset_s if policy else 10.0,
            )
        return breaker

    async def _reject(
        self, send: Send, status: int, error: str, message: str, rid: bytes, scope: Scope,
        started: float,
    ) -> None:
        self.metrics.rejected[status] += 1
        await send_error(send, status, error, message, rid, [(b"connection", b"close")])
        self._done(scope, "-", "proxy", status, started, rid, error)

    def _done(
        self, scope: Scope, service: str, target: str, status: int, started: float, rid: bytes,
        error: str | None,
    ) -> None:
        client = scope.get("client")
        self.record(scope["method"], scope.get("raw_path") or b"", client[0] if client else None,
                    service, target, status, started, rid, error)

    def record(
        self, method: str, path: bytes, client: str | None, service: str, target: str,
        status: int, started: float, rid: bytes, error: str | None,
    ) -> None:
        """Metrics and the access-log line for one answered request."""
        elapsed = time.perf_counter() - started
        self.metrics.observe(service, target, status, elapsed)
        if self.access_log is not None:
            self.access_log.record(method, path, client, service, target, status, elapsed, rid,
                                   error)
