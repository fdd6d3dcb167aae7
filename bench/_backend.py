"""The benchmark backend: a minimal keep-alive HTTP/1.1 server answering every request
with the same 1 KB JSON body. Raw asyncio (uvloop when present) so the backend is never
the bottleneck. ``python -m bench._backend PORT [DELAY_S]`` — DELAY_S makes it slow.
:func:`asgi_app` is the same answer as an ASGI app under uvicorn (a typical upstream).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys

BODY = json.dumps({"items": [{"id": i, "name": "x" * 70} for i in range(11)]}).encode()[:1024]
BODY = BODY + b" " * (1024 - len(BODY))
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    % len(BODY)
) + BODY


async def asgi_app(scope: dict[str, object], receive: object, send: object) -> None:
    """The same answer as an ASGI app (``uvicorn bench._backend:asgi_app``): a typical
    Python upstream, slower than the raw server."""
    if scope["type"] != "http":
        return
    await send({  # type: ignore[operator]
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(BODY)).encode())],
    })
    await send({"type": "http.response.body", "body": BODY})  # type: ignore[operator]


class Backend(asyncio.Protocol):
    delay = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        count = 0
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buf[:end].lower()
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                length = int(head[at + 15 :].split(b"\r\n", 1)[0])
            if len(self.buf) < end + 4 + length:
                break
            self.buf = self.buf[end + 4 + length :]
            count += 1
        if count:
            if self.delay:
                asyncio.get_running_loop().call_later(
                    self.delay, self._answer, RESPONSE * count
                )
            else:
                self.transport.write(RESPONSE * count)

    def _answer(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)


async def serve(port: int, delay: float) -> None:
    Backend.delay = delay
    server = await asyncio.get_running_loop().create_server(
        Backend, "127.0.0.1", port, backlog=1024
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    port = int(sys.argv[1])
    delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(port, delay))


if __name__ == "__main__":
    main()
