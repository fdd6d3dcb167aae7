"""Which source position may be acknowledged (pure).

Records are produced asynchronously; Kafka confirms them later and possibly out of
transaction order across partitions. :class:`AckTracker` keeps open transactions in
source order and releases the position of the newest transaction whose records are all
confirmed *and* all earlier ones too — the only position it is safe to tell the source
"flushed". A failed record keeps its transaction, and everything after it, unacked.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

__all__ = ["AckTracker", "Txn"]

P = TypeVar("P")


class Txn(Generic[P]):
    __slots__ = ("closed", "pending", "position", "records")

    def __init__(self) -> None:
        self.pending = 0
        self.records = 0
        self.closed = False
        self.position: P | None = None

    def sent(self) -> None:
        self.pending += 1
        self.records += 1

    def delivered(self) -> None:
        self.pending -= 1


class AckTracker(Generic[P]):
    """``t = AckTracker(); tx = t.begin(); tx.sent(); t.commit(tx, lsn); tx.delivered();
    t.ready() == lsn``."""

    def __init__(self) -> None:
        self._open: deque[Txn[P]] = deque()

    def begin(self) -> Txn[P]:
        txn: Txn[P] = Txn()
        self._open.append(txn)
        return txn

    def commit(self, txn: Txn[P], position: P) -> None:
        txn.position = position
        txn.closed = True

    def ready(self) -> P | None:
        """Pop the fully confirmed prefix; its last position, or None if nothing new."""
        last: P | None = None
        while self._open and self._open[0].closed and self._open[0].pending == 0:
            last = self._open.popleft().position
        return last

    @property
    def in_flight(self) -> int:
        return len(self._open)

    @property
    def pending_records(self) -> int:
        return sum(t.pending for t in self._open)
