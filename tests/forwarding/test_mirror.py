"""The shadow mirror against a real in-process candidate server."""

from __future__ import annotations

import asyncio

from strangler_proxy.forwarding.forward import Timeouts
from strangler_proxy.forwarding.mirror import Gate, Mirror, MirrorJob
from strangler_proxy.forwarding.upstream import Upstream
from strangler_proxy.shadow.observation import DRY_RUN_HEADER, Exchange


class ListSink:
    def __init__(self) -> None:
        self.got: list[Exchange] = []

    def submit(self, exchange: Exchange) -> None:
        self.got.append(exchange)


def job(candidate: Upstream, *, dry_run: bool = False, method: str = "GET") -> MirrorJob:
    return MirrorJob(
        service="svc",
        route="/x",
        method=method,
        target=b"/x?a=1",
        path=b"/x",
        query=b"a=1",
        headers=((b"host", b"shop"), (b"x-request-id", b"r1")),
        body=b"",
        request_id="r1",
        ts=0.0,
        primary_status=200,
        primary_headers=((b"content-type", b"text/plain"),),
        primary_body=b"primary",
        primary_duration_s=0.001,
        candidate=candidate,
        candidate_timeouts=Timeouts(1, 1),
        monolith=None,
        monolith_timeouts=Timeouts(1, 1),
        dry_run=dry_run,
    )


def test_candidate_gets_the_request_and_the_sink_gets_the_exchange() -> None:
    seen: list[bytes] = []

    async def candidate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ncand")
        await writer.drain()

    async def scenario() -> list[Exchange]:
        server = await asyncio.start_server(candidate, "127.0.0.1", 0)
        up = Upstream.from_url(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        sink = ListSink()
        mirror = Mirror(sink, maxsize=10, workers=1)
        mirror.start()
        assert mirror.accepting("svc", up)
        mirror.offer(job(up, dry_run=True, method="POST"))
        assert await mirror.drained(5)
        await mirror.stop()
        server.close()
        return sink.got

    got = asyncio.run(scenario())
    assert len(got) == 1
    ex = got[0]
    assert ex.primary.body == b"primary" and ex.candidate.status == 201
    assert ex.candidate.body == b"cand" and ex.request.query == "a=1"
    assert seen[0].startswith(b"POST /x?a=1 HTTP/1.1\r\n")
    assert DRY_RUN_HEADER.encode() + b": 1" in seen[0]


def test_full_queue_drops_and_dead_candidate_is_skipped() -> None:
    async def scenario() -> dict[tuple[str, str], int]:
        dead = Upstream.from_url("http://127.0.0.1:1")
        mirror = Mirror(ListSink(), maxsize=1, workers=1)
        mirror.offer(job(dead))
        assert not mirror.accepting("svc", dead)  # queue full: dropped before any work
        mirror.start()
        for _ in range(6):
            assert await mirror.drained(5)
            if mirror.accepting("svc", dead):
                mirror.offer(job(dead))
        await mirror.stop()
        return dict(mirror.stats)

    stats = asyncio.run(scenario())
    assert stats[("svc", "dropped")] == 1
    assert stats[("svc", "candidate_error")] == 5  # then the breaker opened
    assert stats[("svc", "skipped_candidate_down")] == 2  # the last two rounds


def test_open_breaker_skips_without_connecting_and_probes_once_after_the_cooldown() -> None:
    now = [100.0]

    async def scenario() -> tuple[dict[tuple[str, str], int], list[int]]:
        dead = Upstream.from_url("http://127.0.0.1:1")
        mirror = Mirror(ListSink(), maxsize=100, workers=1)
        mirror.clock = lambda: now[0]
        mirror.start()
        for _ in range(5):  # five connect errors open the breaker
            assert mirror.accepting("svc", dead)
            mirror.offer(job(dead))
            assert await mirror.drained(5)
        held = []
        for _ in range(50):  # open: nothing is built, queued or connected
            assert not mirror.accepting("svc", dead)
            held.append(mirror.queue.qsize())
        now[0] += 5.1  # cool-down over: one probe, nobody else while it runs
        assert mirror.accepting("svc", dead)
        assert not mirror.accepting("svc", dead)
        mirror.offer(job(dead))
        assert await mirror.drained(5)
        assert not mirror.accepting("svc", dead)  # the probe failed: open again
        await mirror.stop()
        return dict(mirror.stats), held

    stats, held = asyncio.run(scenario())
    assert stats[("svc", "candidate_error")] == 6
    assert stats[("svc", "skipped_candidate_down")] == 52
    assert held == [0] * 50


def _written(mirror: Mirror, up: Upstream) -> list[bytes]:
    lane = mirror._lanes[up]
    return [call.data for call in lane.backlog]


def test_mirrored_request_bytes_equal_the_general_request_writer() -> None:
    """The mirror formats the whole request in one step; it writes exactly what
    forward.request_head would (plus the body), for header lists and HeaderBlocks, with
    and without the dry-run header, and to the second monolith call without it."""
    from strangler_proxy.forwarding.forward import RequestBody, request_head
    from strangler_proxy.shadow.observation import HeaderBlock

    pairs = [(b"host", b"shop"), (b"x-request-id", b"r1"), (b"cookie", b"a=1; b=2")]
    block = HeaderBlock(b"".join(b"%s: %s\r\n" % p for p in pairs))

    async def scenario() -> None:
        cand = Upstream.from_url("http://127.0.0.1:9/prefix")
        mono = Upstream.from_url("http://127.0.0.1:8")
        for method, body in (("GET", b""), ("DELETE", b""), ("POST", b""), ("PUT", b"{}")):
            for headers in (pairs, block):
                for dry in (False, True):
                    mirror = Mirror()
                    j = job(cand, dry_run=dry, method=method)
                    j.headers, j.body, j.monolith = headers, body, mono
                    j.candidate_timeouts = Timeouts(1, 1)
                    assert mirror.offer(j)
                    extra = [(DRY_RUN_HEADER.encode(), b"1")] if dry else []
                    want = request_head(method.encode(), b"/prefix/x?a=1", [*pairs, *extra],
                                        RequestBody(body, True)) + body
                    assert _written(mirror, cand) == [want], (method, dry, type(headers))
                    second = request_head(method.encode(), b"/x?a=1", pairs,
                                          RequestBody(body, True)) + body
                    assert _written(mirror, mono) == [second]
                    await mirror.stop()

    asyncio.run(scenario())


def _turned_away(gate: Gate) -> bool:
    """What the fast path does with a bodyless request (``Exchange.upstream_whole``)."""
    if gate.shut is not None:
        gate.turned += 1
        return True
    return False


def test_gate_turns_requests_away_cheaply_and_its_counts_reach_stats() -> None:
    """The fast path reads the gate first: shut while the candidate's breaker cools down
    (skipped) or the queue is full (dropped), counted on the gate and folded into
    ``stats`` when read. The mirror opens it again: a loop timer when the cool-down
    ends, a completion when the queue has room."""

    async def scenario() -> tuple[list[object], dict[tuple[str, str], int]]:
        dead = Upstream.from_url("http://127.0.0.1:1")
        mirror = Mirror(ListSink(), maxsize=3, workers=1, cooldown_s=0.3)
        gate = mirror.gate("svc", dead)
        assert mirror.gate("svc", dead) is gate
        mirror.start()
        seen: list[object] = []
        for _ in range(5):  # five connect errors open the breaker
            assert not _turned_away(gate) and mirror.accepting("svc", dead, gate)
            mirror.offer(job(dead))
            assert await mirror.drained(5)
        seen.append(gate.shut)  # None: the gate learns of the cool-down from accepting
        assert not mirror.accepting("svc", dead, gate)
        seen.append(gate.shut)
        seen += [_turned_away(gate) for _ in range(10)]
        await asyncio.sleep(0.4)  # cool-down over: open, the breaker takes a probe
        seen.append(gate.shut)
        assert mirror.accepting("svc", dead, gate)
        mirror.release(dead)
        for _ in range(3):  # three held requests fill the queue (nothing ran yet)
            mirror.offer(job(dead))
        seen.append(gate.shut)
        seen += [_turned_away(gate) for _ in range(4)]
        assert await mirror.drained(5)  # room again
        seen.append(gate.shut)
        assert not mirror.accepting("svc", dead, gate)  # the probe failed: cooling again
        seen.append(gate.shut)
        await mirror.stop()
        return seen, dict(mirror.stats)

    seen, stats = asyncio.run(scenario())
    assert seen == [None, "skipped_candidate_down", *[True] * 10, None, "dropped",
                    *[True] * 4, None, "skipped_candidate_down"]
    assert stats[("svc", "skipped_candidate_down")] == 12  # 2 by accepting, 10 at the gate
    assert stats[("svc", "dropped")] == 4
    assert stats[("svc", "candidate_error")] == 8
