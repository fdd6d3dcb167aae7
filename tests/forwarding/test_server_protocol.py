from __future__ import annotations

import asyncio
from typing import Any

from strangler_proxy.forwarding.server_protocol import CoalescingTransport


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


def test_writes_in_one_iteration_become_one_send() -> None:
    async def scenario() -> list[bytes]:
        raw = FakeTransport()
        t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"body")
        assert raw.writes == [] and t.get_write_buffer_size() == 23
        await asyncio.sleep(0)
        t.write(b"next")
        await asyncio.sleep(0)
        return raw.writes

    assert asyncio.run(scenario()) == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"next"]


def test_close_flushes_pending_writes_first_and_extra_info_passes_through() -> None:
    async def scenario() -> FakeTransport:
        raw = FakeTransport()
        t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        assert t.get_extra_info("peername") == ("127.0.0.1", 1)
        t.write(b"last words")
        t.close()
        await asyncio.sleep(0)
        return raw

    raw = asyncio.run(scenario())
    assert raw.writes == [b"last words"] and raw.closed
