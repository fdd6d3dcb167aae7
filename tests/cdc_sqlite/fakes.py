"""A recording publisher: the seam the relay and snapshot publish through."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cdc.events import Record, RecordKind


class FakePublisher:
    def __init__(self, before_publish: Callable[[Sequence[Record]], None] | None = None) -> None:
        self.records: list[Record] = []
        self.before_publish = before_publish
        self.fail_next = False

    def publish(self, records: Sequence[Record]) -> None:
        if self.before_publish is not None:
            self.before_publish(records)
        if self.fail_next:
            self.fail_next = False
            from cdc.errors import DeliveryFailed

            raise DeliveryFailed("broker gone")
        self.records.extend(records)

    def changes(self) -> list[dict[str, Any]]:
        return [r.value for r in self.records if r.kind is RecordKind.CHANGE and r.value]
