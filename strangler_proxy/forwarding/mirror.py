"""Shadow mirroring off the hot path.

The request handler :meth:`Mirror.offer`s a finished primary exchange; a bounded
``asyncio.Queue`` holds it (full → dropped and counted, the client never waits) and a
few worker tasks replay it to the candidate — and, for a sampled share, a second time to
the monolith — then hand an :class:`Exchange` to the sink. Mirror traffic uses its own
connection pools, so a dead or slow candidate cannot take connections from the primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from strangler_proxy.forwarding.breaker import Breaker
from strangler_proxy.forwarding.errors import UpstreamError
from strangler_proxy.forwarding.forward import (
    RequestBody,
    Timeouts,
    open_response,
    read_all,
    request_head,
)
from strangler_proxy.forwarding.headers import Header
from strangler_proxy.forwarding.upstream import Pool, Upstream
from strangler_proxy.shadow.observation import (
    DRY_RUN_HEADER,
    SOURCE_POSITION_HEADER,
    Exchange,
    ExchangeSink,
    NullSink,
    Observation,
    ObservedRequest,
)

log = logging.getLogger("strangler.mirror")

DRY_RUN = (DRY_RUN_HEADER.encode(), b"1")


@dataclass(slots=True)
class MirrorJob:
    """Raw values captured on the request path; decoded by the worker, off the hot path.
    (Not frozen: a frozen 19-field dataclass costs ~2 µs more per mirrored request.)"""

    service: str
    route: str
    method: str
    target: bytes  # request-target as forwarded (path + query, byte-exact)
    path: bytes
    query: bytes
    headers: tuple[Header, ...]  # as forwarded to the primary
    body: bytes
    request_id: str
    ts: float
    primary_status: int
    primary_headers: tuple[Header, ...]
    primary_body: bytes
    primary_duration_s: float
    candidate: Upstream
    candidate_timeouts: Timeouts
    monolith: Upstream | None  # set when a second monolith call is wanted (noise)
    monolith_timeouts: Timeouts
    dry_run: bool

    def observed_request(self) -> ObservedRequest:
        return ObservedRequest(
            service=self.service,
            route=self.route,
            method=self.method,
            path=self.path.decode("latin-1"),
            query=self.query.decode("latin-1"),
            headers=tuple([(n.decode("latin-1"), v.decode("latin-1")) for n, v in self.headers]),
            body=self.body,
            request_id=self.request_id,
            ts=self.ts,
        )


def observation(
    target: str,
    status: int | None,
    headers: Sequence[Header],
    body: bytes,
    duration_s: float,
    error: str | None = None,
) -> Observation:
    decoded = tuple([(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers])
    position = next((v for n, v in decoded if n == SOURCE_POSITION_HEADER), None)
    return Observation(target, status, decoded, body, duration_s, error, position)


class Mirror:
    """Bounded queue + workers; counters in ``stats`` keyed by (service, outcome)."""

    def __init__(
        self,
        sink: ExchangeSink | None = None,
        *,
        maxsize: int = 1000,
        workers: int = 8,
        response_cap: int = 1024 * 1024,
    ) -> None:
        self.sink: ExchangeSink = sink or NullSink()
        self.queue: asyncio.Queue[MirrorJob] = asyncio.Queue(maxsize=maxsize)
        self.workers = workers
        self.response_cap = response_cap
        self.stats: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.breakers: dict[Upstream, Breaker] = {}
        self.clock = time.monotonic
        self._pools: dict[Upstream, Pool] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def accepting(self, service: str, candidate: Upstream) -> bool:
        """Cheap check before a job is built: room in the queue, candidate not failing.

        A candidate that keeps failing to connect or answer in time is skipped for a
        cool-down (its breaker is open), so a dead shadow costs the primary nothing.
        """
        if self.queue.full():
            self.stats[(service, "dropped")] += 1
            return False
        breaker = self.breakers.get(candidate)
        if breaker is not None and not breaker.allow(self.clock()):
            self.stats[(service, "skipped_candidate_down")] += 1
            return False
        return True

    def release(self, candidate: Upstream) -> None:
        """An accepted request will not be mirrored after all (frees a half-open probe)."""
        breaker = self.breakers.get(candidate)
        if breaker is not None:
            breaker.release()

    def offer(self, job: MirrorJob) -> bool:
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            self.stats[(job.service, "dropped")] += 1
            self.release(job.candidate)
            return False
        return True

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._work()) for _ in range(self.workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for pool in self._pools.values():
            pool.close()

    def _pool(self, upstream: Upstream) -> Pool:
        pool = self._pools.get(upstream)
        if pool is None:
            pool = self._pools[upstream] = Pool(upstream, max_connections=self.workers * 2)
        return pool

    async def _work(self) -> None:
        while True:
            job = await self.queue.get()
            try:
                await self._run(job)
            except Exception:
                log.exception("mirror job failed", extra={"service": job.service})
                self.stats[(job.service, "failed")] += 1
            finally:
                self.queue.task_done()

    async def _run(self, job: MirrorJob) -> None:
        headers = job.headers + ((DRY_RUN,) if job.dry_run else ())
        candidate = await self.call(
            "candidate", job.candidate, job.candidate_timeouts, job, headers
        )
        breaker = self.breakers.get(job.candidate)
        if breaker is None:
            breaker = self.breakers[job.candidate] = Breaker(threshold=5, cooldown_s=5.0)
        if candidate.error in ("connect_error", "timeout"):
            breaker.failure(self.clock())
        else:
            breaker.success()
        secondary = None
        if job.monolith is not None:
            secondary = await self.call(
                "monolith-secondary", job.monolith, job.monolith_timeouts, job, job.headers
            )
        primary = observation(
            "monolith", job.primary_status, job.primary_headers, job.primary_body,
            job.primary_duration_s,
        )
        exchange = Exchange(job.observed_request(), primary, candidate, secondary)
        service = job.service
        self.stats[(service, "mirrored" if candidate.error is None else "candidate_error")] += 1
        try:
            self.sink.submit(exchange)
        except Exception:
            log.exception("exchange sink raised", extra={"service": service})
            self.stats[(service, "sink_error")] += 1

    async def call(
        self,
        name: str,
        upstream: Upstream,
        timeouts: Timeouts,
        job: MirrorJob,
        headers: Sequence[Header],
    ) -> Observation:
        pool = self._pool(upstream)
        method = job.method
        body = RequestBody(job.body, True)
        head = request_head(method.encode(), upstream.base_path + job.target, headers, body)
        started = time.perf_counter()
        try:
            conn = await open_response(pool, method, head, body, timeouts)
            status, resp_headers = conn.status, conn.headers
            data = await read_all(conn, pool, timeouts, self.response_cap)
        except UpstreamError as exc:
            return observation(name, None, (), b"", time.perf_counter() - started, exc.kind)
        elapsed = time.perf_counter() - started
        if data is None:
            return observation(name, status, resp_headers, b"", elapsed, "body_too_large")
        return observation(name, status, resp_headers, data, elapsed)
