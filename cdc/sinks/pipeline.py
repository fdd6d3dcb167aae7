"""Apply batches on one worker thread while the caller polls and plans the next one.

The database commit of batch N (network and server time, during which psycopg2 and
sqlite3 release the GIL) overlaps with reading and planning batch N+1. Batches are
applied one at a time and in submission order, so ordering and the one-transaction-per-
batch rule are unchanged; at most one batch is in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Generic, TypeVar

T = TypeVar("T")


class ApplyPipeline(Generic[T]):
    """``submit(job)`` waits for the job in flight, returns its result (re-raising its
    error, in which case ``job`` is *not* started), then starts ``job``."""

    def __init__(self, name: str = "sink-apply") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: Future[T] | None = None

    @property
    def busy(self) -> bool:
        return self._pending is not None

    def submit(self, job: Callable[[], T]) -> T | None:
        previous = self.collect()
        self._pending = self._executor.submit(job)
        return previous

    def collect(self) -> T | None:
        """Wait for the job in flight (if any) and return its result or raise its error."""
        pending, self._pending = self._pending, None
        return pending.result() if pending is not None else None

    def settle(self) -> None:
        """Wait until the job in flight has finished, leaving its outcome to ``collect``."""
        if self._pending is not None:
            wait([self._pending])

    def close(self) -> None:
        self.settle()
        self._executor.shutdown(wait=True)
