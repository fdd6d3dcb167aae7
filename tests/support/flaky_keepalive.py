"""An upstream that keeps connections alive, then closes one the moment the next
request arrives on it — without answering. That is what a keep-alive race with an
upstream's idle timeout looks like to a proxy.
Run: ``python -m tests.support.flaky_keepalive PORT``. Each response body says which
request number on its connection it answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys


class Flaky(asyncio.Protocol):
    def __init__(self) -> None:
        self.served = 0
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if b"\r\n\r\n" not in self.buf:
            return
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(rest) < length:
            return
        self.buf = rest[length:]
        self.served += 1
        if self.served >= 2:
            self.transport.close()  # type: ignore[attr-defined]
            return
        body = b'{"answered": %d}' % self.served
        self.transport.write(  # type: ignore[attr-defined]
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-upstream: flaky\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Flaky, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(int(sys.argv[1])))
