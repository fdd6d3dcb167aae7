"""The proxy's own Python cost per forwarded request, without sockets.

``ProxyHttpProtocol`` is fed a request through a fake client transport; the fast path
writes it to a pooled upstream ``Connection`` with a fake transport, which is then fed a
canned 1 KB response. No system calls, no event-loop wake-ups: what is left is the
protocol callbacks, header rewriting, routing, metrics and the access log — the part of
``cpu_us_per_request`` that this code controls. Used by ``python -m bench proxy``
(``python_us_per_request``); ``python -m bench._python_cost [N]`` runs it alone.
"""

from __future__ import annotations

import asyncio
import io
import sys
import time
from pathlib import Path
from typing import Any

REQUEST = b"GET /api/items/42?expand=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: b\r\n\r\n"
RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1024\r\n\r\n"
            + b"x" * 1024)
PLAN = """
version: 1
monolith: {url: "http://127.0.0.1:9"}
services:
  items:
    url: "http://127.0.0.1:10"
    routes: [{path: "/api/items/{id}", methods: [GET]}]
    stage: monolith
"""


BATCH = 16
"""Requests handled per event-loop iteration (on the proxy bench it is ~17 on average)."""


class FakeTransport:
    def __init__(self, peer: tuple[str, int]) -> None:
        self.peer = peer
        self.written = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self.peer, "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def pause_reading(self) -> None:
        return None

    def resume_reading(self) -> None:
        return None

    def get_write_buffer_size(self) -> int:
        return 0


async def _measure(n: int) -> float:
    import uvicorn
    from uvicorn.server import ServerState

    from strangler_proxy.app import FixedPlan, ProxyApp
    from strangler_proxy.forwarding.server_protocol import ProxyHttpProtocol
    from strangler_proxy.forwarding.upstream import Connection
    from strangler_proxy.plan import parse_plan
    from strangler_proxy.plan.io import LoadedPlan

    plan = parse_plan(PLAN)
    app = ProxyApp(FixedPlan(LoadedPlan(plan, "bench", Path("bench.yaml"), 0.0)))
    assert app.access_log is not None
    app.access_log.stream = io.BytesIO()  # formatted as in production, kept in memory
    config = uvicorn.Config(app, http=ProxyHttpProtocol, lifespan="off", access_log=False)
    config.load()
    loop = asyncio.get_running_loop()
    protocol = ProxyHttpProtocol(config=config, server_state=ServerState(), app_state={},
                                 _loop=loop)
    client = FakeTransport(("127.0.0.1", 40000))
    protocol.connection_made(client)  # type: ignore[arg-type]
    pool = app.handler.target("monolith", plan.monolith).pool
    conn = Connection()
    conn.connection_made(FakeTransport(("127.0.0.1", 9)))  # type: ignore[arg-type]
    conn.complete = conn.keep_alive = True
    pool._open += 1  # an already-connected upstream connection, idle in the pool
    pool.release(conn)

    async def run(k: int) -> None:
        for i in range(k):
            protocol.data_received(REQUEST)
            conn.data_received(RESPONSE)
            if i % BATCH == BATCH - 1:  # the loop sends the held writes (writebatch.py)
                await asyncio.sleep(0)
        await asyncio.sleep(0)

    await run(500)
    assert app.metrics.paths["fast"] == 500 and client.written > 500 * 1024
    started = time.process_time()
    await run(n)
    return (time.process_time() - started) / n * 1e6


def python_cost(n: int = 30000) -> dict[str, float | int]:
    """µs of CPU per forwarded request spent in Python and C extensions, no I/O."""
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    return {"fast_path": round(run(_measure(n)), 2), "requests": n}


if __name__ == "__main__":
    print(python_cost(int(sys.argv[1]) if len(sys.argv) > 1 else 30000))
