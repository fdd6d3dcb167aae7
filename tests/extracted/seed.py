"""Put monolith rows into the service database the way production does: as Debezium
change events applied by the service's sink."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from cdc.sinks.planner import PlannedWrite, Skip, plan_event
from cdc.sinks.sqlalchemy_applier import Consumed
from extracted.notifications.db import make_engine
from extracted.notifications.sink import notifications_applier

_lsn = itertools.count(1000, 10)


def micros(value: dt.datetime) -> int:
    return int(value.replace(tzinfo=dt.UTC).timestamp() * 1_000_000)


def event(table: str, row: dict[str, Any], op: str = "c") -> dict[str, Any]:
    return {
        "before": None, "after": row, "op": op,
        "source": {"connector": "postgresql", "schema": "public", "table": table,
                   "lsn": next(_lsn), "ts_ms": int(dt.datetime.now(dt.UTC).timestamp() * 1000)},
    }


def customer(i: int, *, email: str | None = None, phone: str = "") -> dict[str, Any]:
    now = micros(dt.datetime(2024, 1, 1))
    return event("accounts_customer", {"id": i, "email": email or f"c{i}@example.com",
                                       "name": f"Customer {i}", "phone": phone,
                                       "created_at": now, "updated_at": now})


def preference(i: int, customer_id: int, channel: str, enabled: bool) -> dict[str, Any]:
    return event("notifications_notificationpreference", {
        "id": i, "customer_id": customer_id, "channel": channel, "enabled": enabled,
        "updated_at": micros(dt.datetime(2024, 1, 1))})


def template(i: int, key: str, channel: str, subject: str, body: str) -> dict[str, Any]:
    at = micros(dt.datetime(2024, 1, 1))
    return event("notifications_notificationtemplate", {
        "id": i, "key": key, "channel": channel, "subject": subject, "body": body,
        "created_at": at, "updated_at": at})


def notification(i: int, customer_id: int, *, created: dt.datetime, channel: str = "email",
                 status: str = "sent", read: bool = False, template: str = "") -> dict[str, Any]:
    return event("notifications_notification", {
        "id": i, "customer_id": customer_id, "channel": channel, "template": template,
        "subject": f"Subject {i}", "body": f"Body {i}", "status": status,
        "created_at": micros(created),
        "sent_at": micros(created) if status == "sent" else None,
        "read_at": micros(created) if read else None,
    })


def apply_events(database_url: str, events: list[dict[str, Any]],
                 topic: str = "shop.public.mixed") -> None:
    engine = make_engine(database_url)  # the engine the sink process uses
    try:
        applier = notifications_applier(engine)
        writes: list[PlannedWrite] = []
        consumed = []
        offset = max((s.next_offset for s in applier.offsets()), default=0)
        for value in events:
            write = plan_event(applier.mapping, value)
            assert not isinstance(write, Skip), write
            writes.append(write)
            consumed.append(Consumed(topic, 0, offset, write.position, write.source_ts_ms))
            offset += 1
        applier.apply(writes, consumed)
    finally:
        engine.dispose()
