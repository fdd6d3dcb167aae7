"""The connection pool and response parsing against real sockets in-process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from strangler_proxy.forwarding import upstream as upstream_module
from strangler_proxy.forwarding.errors import UpstreamConnectError, UpstreamTimeout
from strangler_proxy.forwarding.forward import (
    EMPTY_BODY,
    Timeouts,
    open_response,
    read_all,
    request_head,
)
from strangler_proxy.forwarding.upstream import Connection, Deadlines, Pool, Upstream

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def serve(handler: Handler) -> tuple[asyncio.Server, Upstream]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, Upstream.from_url(f"http://127.0.0.1:{port}")


def head(method: bytes = b"GET") -> bytes:
    return request_head(method, b"/x", [(b"host", b"t")], EMPTY_BODY)


def test_read_timeout_fires_close_to_its_deadline() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def scenario() -> float:
        server, up = await serve(silent)
        pool = Pool(up)
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            await open_response(pool, "GET", head(), EMPTY_BODY, Timeouts(connect=1, read=0.2))
        server.close()
        return time.monotonic() - started

    assert 0.2 <= asyncio.run(scenario()) < 0.6


def test_the_deadline_checker_stops_when_idle_and_add_restarts_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deadlines = Deadlines(resolution=0.01)
    monkeypatch.setattr(upstream_module, "DEADLINES", deadlines)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def scenario() -> tuple[bool, bool, list[bool]]:
        server, up = await serve(silent)
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(Connection, up.host, up.port)
        expired: list[bool] = []
        conn.expired = lambda: expired.append(True)  # type: ignore[method-assign]
        deadlines.add(conn, loop.time() + 0.02, loop)
        running = deadlines.sweeping is loop
        await asyncio.sleep(0.7)  # fires, then > 40 idle checks: the task ends
        stopped = deadlines.sweeping is None
        deadlines.add(conn, loop.time() + 0.02, loop)
        await asyncio.sleep(0.1)
        conn.close()
        server.close()
        return running, stopped, expired

    running, stopped, expired = asyncio.run(scenario())
    assert running and stopped and expired == [True, True]


def test_refused_connection_is_a_connect_error() -> None:
    async def scenario() -> None:
        server, up = await serve(lambda r, w: asyncio.sleep(0))
        server.close()
        await server.wait_closed()
        with pytest.raises(UpstreamConnectError):
            await open_response(Pool(up), "GET", head(), EMPTY_BODY, Timeouts(1, 1))

    asyncio.run(scenario())


def test_keep_alive_connection_is_reused_and_head_does_not_desync_it() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await reader.readuntil(b"\r\n\r\n")
            if request.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            else:
                writer.write(OK)
            await writer.drain()

    async def scenario() -> tuple[int, int, list[bytes | None]]:
        server, up = await serve(answer)
        pool = Pool(up)
        bodies = []
        for method in ("GET", "HEAD", "GET"):
            conn = await open_response(
                pool, method, head(method.encode()), EMPTY_BODY, Timeouts(1, 1)
            )
            bodies.append(await read_all(conn, pool, Timeouts(1, 1), 10_000))
        server.close()
        return pool.stats.opened, pool.stats.reused, bodies

    opened, reused, bodies = asyncio.run(scenario())
    assert bodies == [b"ok", b"", b"ok"]
    assert opened == 1 and reused == 2


def test_idle_connection_closed_by_the_upstream_is_not_reused() -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(OK)
        await writer.drain()
        writer.close()  # closes the idle keep-alive connection right after answering

    async def scenario() -> tuple[int, int]:
        server, up = await serve(once)
        pool = Pool(up)
        for _ in range(2):
            conn = await open_response(pool, "POST", head(b"POST"), EMPTY_BODY, Timeouts(1, 1))
            assert await read_all(conn, pool, Timeouts(1, 1), 100) == b"ok"
            await asyncio.sleep(0.05)
        server.close()
        return pool.stats.opened, pool.stats.stale_retries

    assert asyncio.run(scenario()) == (2, 0)
