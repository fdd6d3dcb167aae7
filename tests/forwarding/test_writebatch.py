"""WriteBatch: writes held to the end of the loop iteration, in order, never lost."""

from __future__ import annotations

import asyncio

from strangler_proxy.forwarding.writebatch import WriteBatch


class Recorder:
    def __init__(self, log: list[tuple[str, bytes]], name: str) -> None:
        self.log, self.name, self.closing = log, name, False

    def write(self, data: bytes) -> None:
        assert not self.closing
        self.log.append((self.name, data))

    def is_closing(self) -> bool:
        return self.closing


async def _iteration() -> None:
    await asyncio.sleep(0)


def test_writes_wait_for_the_end_of_the_iteration_and_keep_their_order() -> None:
    async def main() -> list[tuple[str, bytes]]:
        loop = asyncio.get_running_loop()
        log: list[tuple[str, bytes]] = []
        a, b = Recorder(log, "a"), Recorder(log, "b")
        batch = WriteBatch()
        batch.write(loop, a, b"1")  # type: ignore[arg-type]
        batch.write(loop, b, b"2")  # type: ignore[arg-type]
        batch.write(loop, a, b"3")  # type: ignore[arg-type]
        assert log == []  # nothing sent while this callback runs
        await _iteration()
        assert log == [("a", b"1"), ("b", b"2"), ("a", b"3")]
        batch.write(loop, b, b"4")  # type: ignore[arg-type]
        await _iteration()
        return log

    assert asyncio.run(main())[-1] == ("b", b"4")


def test_flush_sends_now_and_the_scheduled_send_repeats_nothing() -> None:
    async def main() -> list[tuple[str, bytes]]:
        loop = asyncio.get_running_loop()
        log: list[tuple[str, bytes]] = []
        a = Recorder(log, "a")
        batch = WriteBatch()
        batch.write(loop, a, b"last words")  # type: ignore[arg-type]
        batch.flush()  # what a close does first
        a.closing = True
        await _iteration()
        return log

    assert asyncio.run(main()) == [("a", b"last words")]


def test_a_transport_closed_meanwhile_is_skipped() -> None:
    async def main() -> list[tuple[str, bytes]]:
        loop = asyncio.get_running_loop()
        log: list[tuple[str, bytes]] = []
        a, b = Recorder(log, "a"), Recorder(log, "b")
        batch = WriteBatch()
        batch.write(loop, a, b"x")  # type: ignore[arg-type]
        batch.write(loop, b, b"y")  # type: ignore[arg-type]
        a.closing = True  # the client went away
        await _iteration()
        return log

    assert asyncio.run(main()) == [("b", b"y")]


def test_a_new_event_loop_is_not_stuck_behind_a_stopped_one() -> None:
    batch = WriteBatch()
    log: list[tuple[str, bytes]] = []

    loop = asyncio.new_event_loop()
    batch.write(loop, Recorder(log, "old"), b"never")  # type: ignore[arg-type]
    loop.close()  # the loop ends before its scheduled send ever runs

    async def main() -> None:
        batch.write(asyncio.get_running_loop(), Recorder(log, "new"), b"sent")  # type: ignore[arg-type]
        await _iteration()

    asyncio.run(main())
    assert log == [("new", b"sent")]
