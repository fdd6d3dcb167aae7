"""A blind byte relay — the floor for any Python proxy on this event loop.

``python -m bench._relay PORT BACKEND_PORT``: each client connection gets its own
backend connection and bytes are copied both ways as they arrive, with no parsing,
routing, header rules, pooling, metrics or logging (uvloop when present). It is not a
proxy anyone should run; the proxy bench measures it beside nginx and ``strangle
proxy`` to show how much of the gap to nginx is the language and event loop and how
much is the proxy's own work.
"""

from __future__ import annotations

import asyncio
import sys


class _Backend(asyncio.Protocol):
    def __init__(self, client: _Client) -> None:
        self.client = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.client.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.transport.close()


class _Client(asyncio.Protocol):
    backend_port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.backend: _Backend | None = None
        self.held: list[bytes] = []
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, backend = await loop.create_connection(
                lambda: _Backend(self), "127.0.0.1", self.backend_port
            )
        except OSError:
            self.transport.close()
            return
        self.backend = backend
        for data in self.held:
            backend.transport.write(data)
        self.held.clear()

    def data_received(self, data: bytes) -> None:
        if self.backend is None:
            self.held.append(data)
        else:
            self.backend.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.backend is not None:
            self.backend.transport.close()


async def _serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Client, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    port, _Client.backend_port = int(sys.argv[1]), int(sys.argv[2])
    try:
        import uvloop

        uvloop.run(_serve(port))
    except ImportError:
        asyncio.run(_serve(port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
