"""The whole data path, with every component real: the Django monolith writes, the CDC
source (PostgreSQL logical decoding or SQLite triggers) publishes Debezium events to the
embedded broker, the notifications sink applies them — and the service's tables equal the
monolith's, row by row, and its API serves the same notifications."""

from __future__ import annotations

import datetime as dt
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from cdc.config import parse_config
from cdc.offsets import MemoryOffsetStore
from cdc.runner import PgCapture
from cdc.sinks.consumer import SinkConfig, SinkConsumer
from cdc.sinks.sqlalchemy_applier import engine_url
from cdc.sources.sqlite.runner import SqliteCapture, sqlite_config
from extracted.notifications.migrate import upgrade
from extracted.notifications.models import DEFAULT_TABLES
from extracted.notifications.sink import notifications_applier, topics_for
from tests.extracted.service_server import notifications_service
from tests.support.monolith_server import monolith_env, run_monolith, sqlite_url

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

COLUMNS = {
    "notifications_notification": ("notification", ["id", "customer_id", "channel", "template",
                                                    "subject", "body", "status", "created_at",
                                                    "sent_at", "read_at"]),
    "notifications_notificationpreference": ("preference", ["id", "customer_id", "channel",
                                                            "enabled", "updated_at"]),
    "notifications_notificationtemplate": ("template", ["id", "key", "channel", "subject",
                                                        "body", "created_at", "updated_at"]),
    "accounts_customer": ("customer", ["id", "email", "name", "phone", "created_at",
                                       "updated_at"]),
}

CHANGES = """
    from django.utils import timezone
    from monolith.notifications.models import Notification, NotificationPreference
    from monolith.notifications import services
    ids = list(Notification.objects.order_by("id").values_list("id", flat=True))
    Notification.objects.filter(id__in=ids[:5]).update(read_at=timezone.now())
    Notification.objects.filter(id__in=ids[5:8]).delete()
    Notification.objects.filter(id__in=ids[8:10]).update(status="failed", sent_at=None)
    services.preferences_update(customer_id=1, channels={"sms": True, "email": True})
    services.notification_create(customer_id=1, channel="sms", subject="Über", body="naïve ✓")
"""


def _canonical(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] in " T":
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ")
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return value  # SQLite booleans stay 0/1 on both sides after this
    return value


def _rows(engine: sa.Engine, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        result = conn.execute(sa.text(
            f"SELECT {', '.join(columns)} FROM {table} ORDER BY id"))
        return [tuple(_canonical(int(v) if isinstance(v, bool) else v) for v in row)
                for row in result]


@contextmanager
def _running(capture: PgCapture | SqliteCapture) -> Iterator[None]:
    thread = threading.Thread(target=capture.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        capture.stop()
        thread.join(30)


@pytest.mark.parametrize("kind", [pytest.param("postgres", marks=pytest.mark.postgres),
                                  "sqlite"])
def test_monolith_changes_reach_the_service_row_for_row(
    kind: str, tmp_path: Path, kafka_bootstrap: str, request: pytest.FixtureRequest
) -> None:
    prefix = f"e{uuid.uuid4().hex[:8]}"
    plan_tables = dict(DEFAULT_TABLES)
    (tmp_path / "plan.yaml").write_text(
        "services:\n  notifications:\n    data:\n      tables:\n"
        + "".join(f"        {t}: {m}\n" for t, m in plan_tables.items()))
    if kind == "postgres":
        monolith_url = request.getfixturevalue("postgres").create_database(f"m_{prefix}")
        schema = "public"
    else:
        monolith_url = sqlite_url(tmp_path / "monolith.sqlite3")
        schema = "main"
    env = monolith_env(monolith_url, tmp_path, {"STRANGLE_PLAN": str(tmp_path / "plan.yaml")})
    run_monolith(["migrate", "-v", "0"], env, cwd=tmp_path)
    if kind == "sqlite":
        run_monolith(["manage", "capture", "install"], env, cwd=tmp_path)
    # data before capture starts: it reaches the service through the initial snapshot
    run_monolith(["seed", "--customers", "8", "--products", "4", "--orders", "12",
                  "--no-migrate"], env, cwd=tmp_path)

    plan = {"kafka": {"bootstrap_servers": kafka_bootstrap, "topic_prefix": prefix},
            "cdc": {"http": {"port": 0}, "state_dir": str(tmp_path / "cdc"),
                    "heartbeat_interval_s": 0.5},
            "services": {"notifications": {"data": {"tables": plan_tables}}}}
    capture: PgCapture | SqliteCapture
    if kind == "postgres":
        capture = PgCapture(parse_config(plan, {"DATABASE_URL": monolith_url}),
                            offsets=MemoryOffsetStore(), serve_http=False)
    else:
        capture = SqliteCapture(sqlite_config(plan, {"DATABASE_URL": monolith_url}),
                                offsets=MemoryOffsetStore(), serve_http=False)

    service_url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    upgrade(service_url)
    service_engine = sa.create_engine(engine_url(service_url))
    monolith_engine = sa.create_engine(engine_url(monolith_url))
    sink = SinkConsumer(
        SinkConfig(bootstrap_servers=kafka_bootstrap, group_id=f"{prefix}-sink",
                   topics=topics_for(plan_tables, prefix, schema),
                   heartbeat_topic=f"__debezium-heartbeat.{prefix}", poll_timeout_s=0.2),
        notifications_applier(service_engine, plan_tables))
    stop = threading.Event()
    sink_thread = threading.Thread(target=sink.run, args=(stop,))

    def converged() -> bool:
        return all(_rows(service_engine, model, cols) == _rows(monolith_engine, table, cols)
                   for table, (model, cols) in COLUMNS.items())

    def wait_converged(timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not converged() and time.monotonic() < deadline:
            time.sleep(0.3)

    try:
        with _running(capture):
            sink_thread.start()
            wait_converged(90)
            assert _rows(service_engine, "notification", ["id"])  # the snapshot arrived
            run_monolith(["manage", "shell", "-c", textwrap.dedent(CHANGES)], env, cwd=tmp_path)
            wait_converged(60)
            for table, (model, cols) in COLUMNS.items():
                assert _rows(service_engine, model, cols) == _rows(monolith_engine, table, cols)
            assert sink.stats.dead_lettered.total() == 0, sink.stats.as_dict()
            lag = sink.stats.lag_s()
            assert lag is not None and lag < 30
    finally:
        stop.set()
        if sink_thread.is_alive():
            sink_thread.join(30)
        sink.close()

    # and the service answers like the monolith for the synced data
    with notifications_service(service_url, tmp_path) as service:
        listing = httpx.get(f"{service.url}/api/notifications",
                            params={"ordering": "id", "page_size": 100})
        assert listing.status_code == 200
        assert listing.json()["count"] == len(_rows(monolith_engine,
                                                      "notifications_notification", ["id"]))
        assert "x-strangler-source-position" in listing.headers
    service_engine.dispose()
    monolith_engine.dispose()
