"""Shadow mirroring off the hot path.

The request handler asks :meth:`Mirror.accepting` before it captures anything (room
left, candidate not failing), then :meth:`Mirror.offer` gives it the finished
primary exchange. At most ``maxsize`` mirrored requests are held at once, waiting or in flight
(beyond that: dropped and counted; the client never waits). They go out through the
mirror's own pipelined connections (:mod:`~strangler_proxy.forwarding.mirror_pipeline`:
no task per request, several requests per write), to the candidate — and, for a sampled
share, a second time to the monolith — and the finished exchange goes to the sink:
raw (``submit_raw``) when the sink can take it, else decoded (``submit``). A candidate
that keeps failing to connect or answer in time is skipped for a cool-down (breaker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from strangler_proxy.forwarding.breaker import Breaker
from strangler_proxy.forwarding.forward import Timeouts
from strangler_proxy.forwarding.headers import Header
from strangler_proxy.forwarding.mirror_pipeline import Call, Lane
from strangler_proxy.forwarding.upstream import Upstream
from strangler_proxy.shadow.observation import (
    DRY_RUN_HEADER,
    SOURCE_POSITION_HEADER,
    Exchange,
    ExchangeSink,
    HeaderBlock,
    NullSink,
    Observation,
    ObservedRequest,
    RawExchange,
)

log = logging.getLogger("strangler.mirror")

DRY_RUN_LINE = b"%s: 1\r\n" % DRY_RUN_HEADER.encode()
# methods whose empty body gets no Content-Length (as forward.request_head)
NO_LENGTH = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "TRACE"})


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
    headers: Sequence[Header]  # as forwarded to the primary (list or tuple)
    body: bytes
    request_id: str
    ts: float
    primary_status: int
    primary_headers: Sequence[Header]
    primary_body: bytes
    primary_duration_s: float
    candidate: Upstream
    candidate_timeouts: Timeouts
    monolith: Upstream | None  # set when a second monolith call is wanted (noise)
    monolith_timeouts: Timeouts
    dry_run: bool
    # filled in by the mirror: the candidate's answer and, if asked, a second monolith one
    candidate_status: int | None = None
    candidate_headers: Sequence[Header] = ()
    candidate_body: bytes = b""
    candidate_duration_s: float = 0.0
    candidate_error: str | None = None
    secondary: Observation | None = None
    waiting: int = 0  # answers still to come (candidate, secondary)
    breaker: Breaker | None = None  # the candidate's, set by Mirror.offer

    def exchange(self) -> Exchange:
        # (headers may be HeaderBlocks: split here, in the engine, only when needed)
        """The decoded exchange (a :class:`RawExchange` for sinks with ``submit_raw``)."""
        primary = observation(
            "monolith", self.primary_status, self.primary_headers, self.primary_body,
            self.primary_duration_s,
        )
        candidate = observation(
            "candidate", self.candidate_status, self.candidate_headers, self.candidate_body,
            self.candidate_duration_s, self.candidate_error,
        )
        return Exchange(self.observed_request(), primary, candidate, self.secondary)

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


def header_block(headers: Sequence[Header]) -> bytes:
    """Header lines (``name: value\\r\\n`` each) as they go upstream."""
    if type(headers) is HeaderBlock:
        return headers.block
    return b"".join([b"%s: %s\r\n" % header for header in headers])


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


class _Depth:
    """``mirror.queue.qsize()``: mirrored requests held (waiting or in flight)."""

    __slots__ = ("_mirror",)

    def __init__(self, mirror: Mirror) -> None:
        self._mirror = mirror

    def qsize(self) -> int:
        return self._mirror.outstanding

    def full(self) -> bool:
        return self._mirror.outstanding >= self._mirror.maxsize


class Gate:
    """One service's mirroring to one candidate, as the proxy's hot path checks it
    (:meth:`Mirror.gate`). While the mirror's queue is full or the candidate's breaker
    cools down, :attr:`shut` names why (the outcome it is counted under) and the hot path
    turns a request away with one attribute read and one increment of :attr:`turned`;
    the counts are folded into :attr:`Mirror.stats` when they are read. The mirror
    opens and shuts its gates when the queue fills or frees and when a cool-down starts
    or ends (a loop timer), so no request reads the clock."""

    __slots__ = ("cooling", "mirror", "service", "shut", "turned")

    def __init__(self, mirror: Mirror, service: str) -> None:
        self.mirror = mirror
        self.service = service
        self.shut: str | None = None  # None: open, else the outcome a turned request gets
        self.turned = 0  # requests turned away (for ``shut``) since the last fold
        self.cooling = False  # the candidate's breaker is cooling down
        self.update()

    def update(self) -> None:
        """Open or shut for the mirror's queue and the candidate's cool-down now."""
        mirror = self.mirror
        shut = ("dropped" if mirror.outstanding >= mirror.maxsize
                else "skipped_candidate_down" if self.cooling else None)
        if shut != self.shut:
            self.fold()  # what was turned away so far counts under the old reason
            self.shut = shut

    def fold(self) -> None:
        if self.turned:
            assert self.shut is not None
            self.mirror._stats[(self.service, self.shut)] += self.turned
            self.turned = 0

    def cooled(self) -> None:
        """The cool-down is over: the next request asks the breaker (half-open probe)."""
        self.cooling = False
        self.update()


class Mirror:
    """Bounded mirroring; counters in ``stats`` keyed by (service, outcome): ``mirrored``,
    ``candidate_error``, ``dropped``, ``skipped_candidate_down``, ``sink_error``.

    ``workers`` is the most connections per upstream, ``pipeline`` the most requests in
    flight on one connection; requests offered within ``gather_s`` go out in one write
    (measured on the proxy bench: writing at once, ~1.3 requests per write, cost ~10 µs
    more CPU per mirrored request than gathering 2 to 5 ms; longer made no difference).
    """

    def __init__(
        self,
        sink: ExchangeSink | None = None,
        *,
        maxsize: int = 1000,
        workers: int = 8,
        response_cap: int = 1024 * 1024,
        pipeline: int = 32,
        gather_s: float = 0.005,
        cooldown_s: float = 5.0,
    ) -> None:
        self.sink: ExchangeSink = sink or NullSink()
        self.maxsize = maxsize
        self.workers = workers
        self.pipeline = pipeline
        self.gather_s = gather_s
        self.cooldown_s = cooldown_s  # a failing candidate is skipped this long
        self.response_cap = response_cap
        self.outstanding = 0
        self.queue = _Depth(self)
        self._stats: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._gates: dict[tuple[str, int], tuple[Upstream, Gate]] = {}
        self.breakers: dict[Upstream, Breaker] = {}
        self.clock = time.monotonic
        self._lanes: dict[Upstream, Lane] = {}
        # id(upstream) -> (upstream, lane, breaker): the hot path hands us the same
        # Upstream object every time, and an int hashes in C (a frozen dataclass does not)
        self._by_id: dict[int, tuple[Upstream, Lane, Breaker]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._submit_raw: Callable[[RawExchange], None] | None = None
        self._sink_seen: ExchangeSink | None = None

    @property
    def stats(self) -> defaultdict[tuple[str, str], int]:
        """Counts by (service, outcome), including those the gates turned away."""
        self.fold()
        return self._stats

    def fold(self) -> None:
        """Add what the gates counted to :attr:`stats` (metrics call it before reading)."""
        for _, gate in self._gates.values():
            gate.fold()

    def _regate(self) -> None:
        """The queue filled up or has room again: every gate opens or shuts."""
        for _, gate in self._gates.values():
            gate.update()

    def gate(self, service: str, candidate: Upstream) -> Gate:
        """The :class:`Gate` for mirroring ``service``'s requests to ``candidate``."""
        found = self._gates.get((service, id(candidate)))
        if found is not None and found[0] is candidate:
            return found[1]
        if len(self._gates) > 256:  # plan reloads bring new Upstream objects
            self.fold()
            self._gates.clear()
        gate = Gate(self, service)
        self._gates[(service, id(candidate))] = (candidate, gate)
        return gate

    def accepting(self, service: str, candidate: Upstream, gate: Gate | None = None) -> bool:
        """Cheap check before a job is built: room left, candidate not failing.

        A candidate that keeps failing to connect or answer in time is skipped for a
        cool-down (its breaker is open), so a dead shadow costs the primary nothing.
        """
        if self.outstanding >= self.maxsize:
            self._stats[(service, "dropped")] += 1
            return False
        found = self._by_id.get(id(candidate))
        if found is None or found[0] is not candidate:
            found = self._of(candidate)
        breaker = found[2]
        state = breaker.state
        if state == "closed":
            return True
        cooling = state == "open" and self.clock() - breaker.opened_at < breaker.cooldown_s
        if not cooling and breaker.allow(self.clock()):  # half-open: one probe at a time
            return True
        if cooling and gate is not None and not gate.cooling:
            self._shut_until_cooled(gate, breaker.opened_at + breaker.cooldown_s)
        self._stats[(service, "skipped_candidate_down")] += 1
        return False

    def _shut_until_cooled(self, gate: Gate, until: float) -> None:
        """The gate turns requests away until the breaker's cool-down ends (a timer on
        the running loop; without one, every request keeps asking :meth:`accepting`)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        gate.cooling = True
        gate.update()
        loop.call_later(max(0.0, until - self.clock()), gate.cooled)

    def release(self, candidate: Upstream) -> None:
        """An accepted request will not be mirrored after all (frees a half-open probe)."""
        self._of(candidate)[2].release()

    def offer(self, job: MirrorJob) -> bool:
        if self.outstanding >= self.maxsize:
            self._stats[(job.service, "dropped")] += 1
            self.release(job.candidate)
            return False
        self.outstanding += 1
        if self.outstanding == self.maxsize:
            self._regate()
        candidate = job.candidate
        found = self._by_id.get(id(candidate))
        if found is None or found[0] is not candidate:
            found = self._of(candidate)
        lane = found[1]
        job.breaker = found[2]
        name = job.method
        method = name.encode()
        body = job.body
        block = header_block(job.headers)
        length = b"content-length: %d\r\n" % len(body) if body or name not in NO_LENGTH else b""
        job.waiting = 1
        second = job.monolith
        if second is not None:
            job.waiting = 2
            second_lane = self._of(second, candidate=False)[1]
            second_lane.connect_timeout = job.monolith_timeouts.connect
            second_lane.add(Call(
                b"%s %s%s HTTP/1.1\r\n%s%s\r\n%s"
                % (method, second.base_path, job.target, block, length, body),
                name, job.monolith_timeouts.read, self._secondary, job,
            ))
        if job.dry_run:
            block += DRY_RUN_LINE
        timeouts = job.candidate_timeouts
        lane.connect_timeout = timeouts.connect
        lane.add(Call(
            b"%s %s%s HTTP/1.1\r\n%s%s\r\n%s"
            % (method, candidate.base_path, job.target, block, length, body),
            name, timeouts.read, self._candidate, job,
        ))
        return True

    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for lane in self._lanes.values():
            lane.close()
        self._lanes.clear()
        self._by_id.clear()
        self.outstanding = 0
        self._regate()

    async def drained(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is waiting or in flight (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self.outstanding and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        return not self.outstanding

    def _of(self, upstream: Upstream, *, candidate: bool = True) -> tuple[Upstream, Lane, Breaker]:
        """The lane and breaker of an upstream (equal upstreams share them; candidates'
        breakers are listed in ``breakers``)."""
        found = self._by_id.get(id(upstream))
        if found is not None and found[0] is upstream:
            return found
        lane = self._lanes.get(upstream)
        if lane is None:
            lane = self._lanes[upstream] = Lane(
                upstream, max_connections=self.workers, depth=self.pipeline,
                response_cap=self.response_cap, gather_s=self.gather_s,
            )
        breaker = self.breakers.get(upstream) or Breaker(threshold=5,
                                                         cooldown_s=self.cooldown_s)
        if candidate:
            self.breakers[upstream] = breaker
        if len(self._by_id) > 256:  # plan reloads bring new Upstream objects
            self._by_id.clear()
        found = self._by_id[id(upstream)] = (upstream, lane, breaker)
        return found

    async def _sweep(self) -> None:
        """Read timeouts of mirrored requests, checked every 0.1 s."""
        while True:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            for lane in list(self._lanes.values()):
                lane.expire(now)

    # completions (called from the connections' parser callbacks; never raise)
    def _candidate(
        self, call: Call, status: int | None, headers: Sequence[Header], body: bytes,
        error: str | None,
    ) -> None:
        job: MirrorJob = call.tag  # type: ignore[assignment]
        job.candidate_headers = headers
        job.candidate_body = body
        job.candidate_duration_s = time.monotonic() - call.started if call.started else 0.0
        breaker = job.breaker or self._of(job.candidate)[2]
        if error is None:
            job.candidate_status = status
            if breaker.failures or breaker.state != "closed":
                breaker.success()
        else:
            job.candidate_status = status if error == "body_too_large" else None
            job.candidate_error = error
            if error == "connect_error" or error == "timeout":
                breaker.failure(self.clock())
            elif breaker.failures or breaker.state != "closed":
                breaker.success()
        job.waiting -= 1
        if not job.waiting:
            self._deliver(job)

    def _secondary(
        self, call: Call, status: int | None, headers: Sequence[Header], body: bytes,
        error: str | None,
    ) -> None:
        job = cast(MirrorJob, call.tag)
        duration = time.monotonic() - call.started if call.started else 0.0
        job.secondary = observation(
            "monolith-secondary", None if error and error != "body_too_large" else status,
            headers, body, duration, error,
        )
        job.waiting -= 1
        if not job.waiting:
            self._deliver(job)

    def _deliver(self, job: MirrorJob) -> None:
        self.outstanding -= 1
        if self.outstanding == self.maxsize - 1:
            self._regate()
        service = job.service
        ok = job.candidate_error is None
        self._stats[(service, "mirrored" if ok else "candidate_error")] += 1
        sink = self.sink
        if sink is not self._sink_seen:  # the sink is set after construction
            self._sink_seen = sink
            self._submit_raw = getattr(sink, "submit_raw", None)
        try:
            if self._submit_raw is not None:
                self._submit_raw(job)
            else:
                sink.submit(job.exchange())
        except Exception:
            log.exception("exchange sink raised", extra={"service": service})
            self._stats[(service, "sink_error")] += 1
