"""The mirror's pipelined client against real servers: a uvicorn upstream and raw asyncio
servers that show what went over the wire (which requests arrived in one read)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator, Sequence

import pytest

from strangler_proxy.forwarding.forward import Timeouts
from strangler_proxy.forwarding.headers import Header
from strangler_proxy.forwarding.mirror import Mirror, MirrorJob
from strangler_proxy.forwarding.mirror_pipeline import Call, Lane, PipeConnection
from strangler_proxy.forwarding.upstream import Upstream
from strangler_proxy.shadow.observation import Exchange, HeaderBlock
from tests.support.servers import Server, start_uvicorn


class ListSink:
    def __init__(self) -> None:
        self.got: list[Exchange] = []

    def submit(self, exchange: Exchange) -> None:
        self.got.append(exchange)


def job(
    candidate: Upstream,
    target: bytes = b"/x",
    *,
    method: str = "GET",
    rid: str = "r1",
    body: bytes = b"",
    dry_run: bool = False,
    read: float = 5.0,
) -> MirrorJob:
    path, _, query = target.partition(b"?")
    return MirrorJob(
        service="svc", route="/x", method=method, target=target, path=path, query=query,
        headers=((b"host", b"shop"), (b"x-request-id", rid.encode())), body=body,
        request_id=rid, ts=0.0, primary_status=200,
        primary_headers=((b"content-type", b"application/json"),), primary_body=b"{}",
        primary_duration_s=0.001, candidate=candidate, candidate_timeouts=Timeouts(1, read),
        monolith=None, monolith_timeouts=Timeouts(1, 1), dry_run=dry_run,
    )


@pytest.fixture(scope="module")
def uvicorn_upstream() -> Iterator[Server]:
    server = start_uvicorn("tests.support.upstream_app:app", {"UPSTREAM_NAME": "svc"})
    try:
        yield server
    finally:
        server.stop()


def test_pipelined_answers_are_paired_with_their_requests(uvicorn_upstream: Server) -> None:
    async def scenario() -> tuple[list[Exchange], int]:
        up = Upstream.from_url(uvicorn_upstream.url)
        sink = ListSink()
        mirror = Mirror(sink, workers=2, pipeline=8)
        mirror.start()
        for i in range(40):
            assert mirror.accepting("svc", up)
            mirror.offer(job(up, b"/echo?i=%d" % i, rid=f"p{i}"))
        assert await mirror.drained(10)
        conns = len(mirror._lanes[up].conns)
        await mirror.stop()
        return sink.got, conns

    got, conns = asyncio.run(scenario())
    assert len(got) == 40 and conns <= 2
    for ex in got:
        seen = json.loads(ex.candidate.body)
        assert ex.candidate.status == 200 and ex.candidate.error is None
        assert seen["query_string"] == "i=" + ex.request.request_id[1:]
        assert dict(seen["headers"])["x-request-id"] == ex.request.request_id


Handler = Callable[[bytes], Awaitable[bytes]]  # request bytes -> raw response bytes


async def raw_server(
    answer: Handler, reads: list[list[bytes]], *, close_after_each: bool = False
) -> tuple[asyncio.Server, Upstream]:
    """Answers each request (split on the blank line; bodies by Content-Length) in order;
    ``reads`` gets, per read, the request lines that arrived in it."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = b""
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                buf += data
                requests = []
                while b"\r\n\r\n" in buf:
                    head, rest = buf.split(b"\r\n\r\n", 1)
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    if len(rest) < length:
                        break
                    requests.append(head + b"\r\n\r\n" + rest[:length])
                    buf = rest[length:]
                reads.append([r.split(b"\r\n", 1)[0] for r in requests])
                for r in requests:
                    writer.write(await answer(r))
                    await writer.drain()
                    if close_after_each:
                        writer.close()
                        return
        except ConnectionError:
            return

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, Upstream.from_url(f"http://127.0.0.1:{port}")


def response(body: bytes, *, close: bool = False, status: int = 200) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return b"HTTP/1.1 %d OK\r\nContent-Length: %d\r\n%b\r\n%b" % (status, len(body), extra, body)


async def echo_line(request: bytes) -> bytes:
    return response(request.split(b"\r\n", 1)[0])


def test_requests_offered_together_go_out_in_one_write() -> None:
    async def scenario() -> tuple[list[list[bytes]], list[Exchange]]:
        reads: list[list[bytes]] = []
        server, up = await raw_server(echo_line, reads)
        sink = ListSink()
        mirror = Mirror(sink, workers=4, pipeline=16)
        mirror.start()
        for i in range(5):
            mirror.offer(job(up, b"/a?i=%d" % i))
        assert await mirror.drained(5)
        await mirror.stop()
        server.close()
        return reads, sink.got

    reads, got = asyncio.run(scenario())
    assert reads[0] == [b"GET /a?i=%d HTTP/1.1" % i for i in range(5)]
    assert sorted(ex.candidate.body for ex in got) == [
        b"GET /a?i=%d HTTP/1.1" % i for i in range(5)
    ]


def test_writes_and_head_requests_are_never_pipelined() -> None:
    async def slow_echo(request: bytes) -> bytes:
        await asyncio.sleep(0.05)
        if request.startswith(b"HEAD"):
            return b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
        return await echo_line(request)

    async def scenario() -> tuple[list[list[bytes]], list[Exchange]]:
        reads: list[list[bytes]] = []
        server, up = await raw_server(slow_echo, reads)
        sink = ListSink()
        mirror = Mirror(sink, workers=1, pipeline=16)
        mirror.start()
        mirror.offer(job(up, b"/w1", method="POST", body=b"{}", dry_run=True))
        mirror.offer(job(up, b"/r1"))
        mirror.offer(job(up, b"/r2"))
        mirror.offer(job(up, b"/h", method="HEAD"))
        mirror.offer(job(up, b"/r3"))
        assert await mirror.drained(5)
        await mirror.stop()
        server.close()
        return reads, sink.got

    reads, got = asyncio.run(scenario())
    assert reads == [
        [b"POST /w1 HTTP/1.1"],
        [b"GET /r1 HTTP/1.1", b"GET /r2 HTTP/1.1"],
        [b"HEAD /h HTTP/1.1"],
        [b"GET /r3 HTTP/1.1"],
    ]
    by_path = {ex.request.path: ex.candidate for ex in got}
    assert by_path["/w1"].body == b"POST /w1 HTTP/1.1"
    assert by_path["/h"].status == 200 and by_path["/h"].body == b""
    assert by_path["/r3"].body == b"GET /r3 HTTP/1.1"


def test_a_server_closing_after_each_answer_still_answers_every_request() -> None:
    async def closing_echo(request: bytes) -> bytes:
        return response(request.split(b"\r\n", 1)[0], close=True)

    async def scenario() -> tuple[list[Exchange], bool]:
        reads: list[list[bytes]] = []
        server, up = await raw_server(closing_echo, reads, close_after_each=True)
        sink = ListSink()
        mirror = Mirror(sink, workers=2, pipeline=16)
        mirror.start()
        for i in range(6):
            mirror.offer(job(up, b"/c?i=%d" % i))
        assert await mirror.drained(5)
        pipelining = mirror._lanes[up].pipelining
        await mirror.stop()
        server.close()
        return sink.got, pipelining

    got, pipelining = asyncio.run(scenario())
    assert sorted(ex.candidate.body for ex in got) == [
        b"GET /c?i=%d HTTP/1.1" % i for i in range(6)
    ]
    assert all(ex.candidate.error is None for ex in got)
    assert not pipelining  # unanswered requests were re-sent one at a time


def test_a_connection_dropped_unanswered_is_retried_and_pipelining_stays_on() -> None:
    """What a keep-alive connection closed by the server just as a pipeline is written
    looks like: nothing answered, the connection gone."""
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            await reader.read(65536)
            writer.close()
            return
        buf = b""
        while True:
            data = await reader.read(65536)
            if not data:
                return
            buf += data
            while b"\r\n\r\n" in buf:
                head, buf = buf.split(b"\r\n\r\n", 1)
                writer.write(response(head.split(b"\r\n", 1)[0]))

    async def scenario() -> tuple[list[Exchange], bool]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        up = Upstream.from_url(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        sink = ListSink()
        mirror = Mirror(sink, workers=1, pipeline=16)
        mirror.start()
        for i in range(4):
            mirror.offer(job(up, b"/d?i=%d" % i))
        assert await mirror.drained(5)
        pipelining = mirror._lanes[up].pipelining
        await mirror.stop()
        server.close()
        return sink.got, pipelining

    got, pipelining = asyncio.run(scenario())
    assert sorted(ex.candidate.body for ex in got) == [
        b"GET /d?i=%d HTTP/1.1" % i for i in range(4)
    ]
    assert pipelining


def test_a_candidate_that_never_answers_times_out_and_trips_the_breaker() -> None:
    async def never(request: bytes) -> bytes:
        await asyncio.sleep(30)
        return b""

    async def scenario() -> tuple[list[Exchange], dict[tuple[str, str], int]]:
        server, up = await raw_server(never, [])
        sink = ListSink()
        mirror = Mirror(sink, workers=1, pipeline=16)
        mirror.start()
        for _ in range(6):
            if mirror.accepting("svc", up):
                mirror.offer(job(up, read=0.2))
        assert await mirror.drained(5)
        assert not mirror.accepting("svc", up)  # 6 timeouts: the breaker is open
        await mirror.stop()
        server.close()
        return sink.got, dict(mirror.stats)

    got, stats = asyncio.run(scenario())
    assert [ex.candidate.error for ex in got] == ["timeout"] * 6
    assert all(ex.candidate.status is None for ex in got)
    assert stats[("svc", "candidate_error")] == 6
    assert stats[("svc", "skipped_candidate_down")] == 1


def test_waiting_behind_other_pipelined_requests_is_not_charged_to_the_candidate() -> None:
    """The server answers one request at a time (like uvicorn), 0.2 s each: six pipelined
    requests take 1.2 s in all, but none waited 0.5 s once the server could start on it."""

    async def one_at_a_time(request: bytes) -> bytes:
        await asyncio.sleep(0.2)
        return await echo_line(request)

    async def scenario() -> list[Exchange]:
        reads: list[list[bytes]] = []
        server, up = await raw_server(one_at_a_time, reads)
        sink = ListSink()
        mirror = Mirror(sink, workers=1, pipeline=16)
        mirror.start()
        for i in range(6):
            mirror.offer(job(up, b"/q?i=%d" % i, read=0.5))
        assert await mirror.drained(5)
        await mirror.stop()
        server.close()
        assert reads[0] == [b"GET /q?i=%d HTTP/1.1" % i for i in range(6)]  # one pipeline
        return sink.got

    got = asyncio.run(scenario())
    assert [ex.candidate.error for ex in got] == [None] * 6
    assert all(0.15 < ex.candidate.duration_s < 0.45 for ex in got)


def test_an_oversized_candidate_answer_is_recorded_without_its_body() -> None:
    async def big(request: bytes) -> bytes:
        return response(b"x" * 1000)

    async def scenario() -> list[Exchange]:
        server, up = await raw_server(big, [])
        sink = ListSink()
        mirror = Mirror(sink, workers=1, response_cap=100)
        mirror.start()
        mirror.offer(job(up))
        mirror.offer(job(up))
        assert await mirror.drained(5)
        await mirror.stop()
        server.close()
        return sink.got

    got = asyncio.run(scenario())
    assert [(ex.candidate.status, ex.candidate.body, ex.candidate.error) for ex in got] == [
        (200, b"", "body_too_large")
    ] * 2


def test_a_slow_candidate_holds_at_most_maxsize_and_the_rest_are_dropped() -> None:
    async def slow(request: bytes) -> bytes:
        await asyncio.sleep(0.2)
        return await echo_line(request)

    async def scenario() -> tuple[list[Exchange], dict[tuple[str, str], int], int, int]:
        reads: list[list[bytes]] = []
        server, up = await raw_server(slow, reads)
        sink = ListSink()
        mirror = Mirror(sink, maxsize=4, workers=1, pipeline=2)
        mirror.start()
        for i in range(10):
            if mirror.accepting("svc", up):
                mirror.offer(job(up, b"/s?i=%d" % i))
            await asyncio.sleep(0)
        depth = mirror.queue.qsize()
        await asyncio.sleep(0.05)
        in_flight = mirror._lanes[up].in_flight()
        assert await mirror.drained(5)
        await mirror.stop()
        server.close()
        return sink.got, dict(mirror.stats), depth, in_flight

    got, stats, depth, in_flight = asyncio.run(scenario())
    assert depth == 4 and stats[("svc", "dropped")] == 6
    assert in_flight == 2  # one connection, pipeline depth 2: the other two wait
    assert stats[("svc", "mirrored")] == 4 and len(got) == 4


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True


# a pipeline of answers: whole Content-Length ones (split without parser callbacks),
# an interim 100, a chunked one, one with Connection: keep-alive and odd spacing, a 204
STREAM = [
    b"HTTP/1.1 200 OK\r\nContent-Type:  application/json\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nContent-Type:  application/json\r\nContent-Length: 2\r\n\r\n[]",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 3\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    b"HTTP/1.1 404 Not Found\r\nConnection: keep-alive\r\nX-A:\t v \r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nX-B: 1\r\n\r\n",
    b"HTTP/1.1 500 \r\nContent-Length: 4\r\nX-C: c\r\n\r\noops",
]
EXPECTED = [
    (200, [(b"content-type", b"application/json"), (b"content-length", b"2")], b"{}"),
    (200, [(b"content-type", b"application/json"), (b"content-length", b"2")], b"[]"),
    (201, [(b"content-length", b"3")], b"abc"),
    (200, [(b"transfer-encoding", b"chunked")], b"hi"),
    (404, [(b"connection", b"keep-alive"), (b"x-a", b"v "), (b"content-length", b"0")], b""),
    (204, [(b"x-b", b"1")], b""),
    (500, [(b"content-length", b"4"), (b"x-c", b"c")], b"oops"),
]


Answer = tuple[int | None, list[Header], bytes, str | None]


def _answers(reads: list[bytes]) -> tuple[list[Answer], PipeConnection]:
    got: list[Answer] = []

    def done(call: Call, status: int | None, headers: Sequence[Header], body: bytes,
             error: str | None) -> None:
        got.append((status, list(headers), body, error))

    lane = Lane(Upstream.from_url("http://127.0.0.1:9"))
    conn = PipeConnection(lane)
    conn.connection_made(_Transport())  # type: ignore[arg-type]
    for _ in STREAM:
        conn.inflight.append(Call(b"", "GET", 5.0, done))
    for data in reads:
        conn.data_received(data)
    return got, conn


def test_pipelined_answers_are_read_the_same_however_the_reads_split_them() -> None:
    """Whole Content-Length answers are split by one regex, the rest by httptools; the
    two take turns within a read and across reads — every split point gives the same
    answers as httptools alone would (interim 100 skipped, chunked decoded, 204 empty,
    leading whitespace of values dropped, names lower-cased)."""
    stream = b"".join(STREAM)
    whole, conn = _answers([stream])
    assert whole == [(s, h, b, None) for s, h, b in EXPECTED]
    assert conn.answered == len(STREAM) and not conn.inflight and not conn.closed
    for cut in range(1, len(stream)):
        got, conn = _answers([stream[:cut], stream[cut:]])
        assert got == whole, cut
        assert not conn.inflight and not conn.closed
    for cut in range(1, len(stream) - 2, 7):  # three reads
        got, _ = _answers([stream[:cut], stream[cut:cut + 5], stream[cut + 5:]])
        assert got == whole, cut


def test_a_repeated_answer_head_reuses_its_header_block() -> None:
    got, conn = _answers([STREAM[0] + STREAM[0].replace(b"{}", b"[]")])
    assert [g[2] for g in got] == [b"{}", b"[]"]
    assert conn._last is not None and isinstance(conn._last[2], HeaderBlock)


def test_an_answer_nobody_asked_for_fails_the_connection() -> None:
    got, conn = _answers([b"".join(STREAM) + STREAM[0]])
    assert [g[3] for g in got] == [None] * len(STREAM)
    assert conn.closed
