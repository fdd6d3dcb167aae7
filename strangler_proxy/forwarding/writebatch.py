"""Writes held to the end of the event-loop iteration, then sent together.

On loopback (and in virtual machines generally) a ``send()`` that wakes a sleeping peer
costs the sender several microseconds of the peer's wake-up. While the proxy works
through a batch of ready sockets its peers are idle; sending each write as it is made
wakes them once per write. Holding the writes until every ready socket has been
handled, then sending them back to back, lets one wake-up serve many writes: measured
on the proxy bench, ~15% more requests per second from the same CPU.

Order is kept per transport (one list, appended in order). Flow control still works:
a transport pauses its writer when the held bytes are actually written, one iteration
later. Callers that close a transport call :meth:`WriteBatch.flush` first.
"""

from __future__ import annotations

import asyncio


class WriteBatch:
    """One per fast path; tied to the loop it was last used on."""

    __slots__ = ("_items", "_loop")

    def __init__(self) -> None:
        self._items: list[tuple[asyncio.Transport, bytes]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def write(self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport,
              data: bytes) -> None:
        items = self._items
        if items is None or self._loop is not loop:
            items = self._items = []
            self._loop = loop
            loop.call_soon(self._send, items)
        items.append((transport, data))

    def flush(self) -> None:
        """Send what is held now (before a transport is closed)."""
        items = self._items
        if items:
            self._send(items)

    def _send(self, items: list[tuple[asyncio.Transport, bytes]]) -> None:
        if self._items is items:
            self._items = None
        for transport, data in items:
            if not transport.is_closing():
                transport.write(data)
        items.clear()  # a flush() before the scheduled call: nothing twice
