"""cdc/sinks/reverse.py: the way back from a service to the monolith.

The mapping turned around (pure), and the whole two-way loop on real components: the
Django monolith on SQLite with its capture, the notifications service over HTTP with its
own capture (extracted/notifications/capture.py), the embedded broker, the forward sink
and the reverse sink — writes on either side reach the other, ids never collide, and
nothing applied by a sink is captured again."""

from __future__ import annotations

import logging
import re
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from cdc.config import parse_config
from cdc.offsets import MemoryOffsetStore
from cdc.runner import PgCapture
from cdc.sinks.consumer import SinkConfig, SinkConsumer
from cdc.sinks.mapping import MappingError
from cdc.sinks.origin import tag_postgres_sessions
from cdc.sinks.reverse import (
    back_prefix,
    back_topics,
    monolith_engine,
    owned_tables,
    reverse_applier,
    reverse_tables,
)
from cdc.sinks.sqlalchemy_applier import engine_url
from cdc.sources.sqlite.runner import SqliteCapture, sqlite_config
from extracted.notifications.capture import capture_config, install_capture
from extracted.notifications.config import DEFAULT_ID_BASE as BASE
from extracted.notifications.db import make_engine
from extracted.notifications.migrate import upgrade
from extracted.notifications.models import DEFAULT_TABLES
from extracted.notifications.sink import notifications_applier, topics_for
from tests.extracted.service_server import notifications_service
from tests.extracted.test_cdc_to_service import COLUMNS, _rows
from tests.support.monolith_server import monolith_env, run_monolith, sqlite_url

OWNED = ["notifications_notification", "notifications_notificationpreference"]


def test_the_mapping_is_turned_around_renames_included() -> None:
    plan = {"services": {"n": {"data": {
        "tables": {"a_note": "note", "public.a_pref": {"model": "pref",
                                                      "rename": {"customer_id": "owner"}},
                   "a_customer": "customer"},
        "owned": ["a_note", "public.a_pref"]}}}}
    owned = owned_tables(plan, "n")
    assert list(owned) == ["a_note", "public.a_pref"]  # read-only a_customer stays out
    assert reverse_tables(owned) == {
        "note": "a_note",
        "pref": {"model": "a_pref", "rename": {"owner": "customer_id"}, "key": ["id"]}}
    assert back_prefix("shop", "n") == "shop.n"
    assert back_topics(["note", "pref"], "shop.n", "main") == ("shop.n.main.note",
                                                              "shop.n.main.pref")


@pytest.mark.parametrize(("data", "message"), [
    ({"tables": {"a": {"model": "b", "transform": {"x": "lower"}}}, "owned": ["a"]},
     "tables.a: an owned table cannot declare transforms"),
    ({"tables": {"a": "b"}, "owned": ["c"]}, "'c' is not in data.tables"),
])
def test_what_cannot_go_back_is_refused_by_name(data: dict[str, Any], message: str) -> None:
    with pytest.raises(MappingError, match=re.escape(message)):
        reverse_tables(owned_tables({"services": {"n": {"data": data}}}, "n"))
    with pytest.raises(MappingError, match=r"services\.x: not in the plan"):
        owned_tables({"services": {}}, "x")


@contextmanager
def _thread(target: Callable[[], None], stop: Callable[[], None]) -> Iterator[None]:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop()
        thread.join(30)


def _eventually(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def _one(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        row = conn.execute(sa.text(sql), params).first()
    return None if row is None else row[0]


CREATE_IN_MONOLITH = """
    from monolith.notifications import services
    n = services.notification_create(customer_id=3, channel="email", subject="from the monolith",
                                     body="b")
    print("ID", n.id)
"""


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_way_sync_on_real_components(kind: str, tmp_path: Path, kafka_bootstrap: str,
                                         request: pytest.FixtureRequest) -> None:
    prefix = f"w{uuid.uuid4().hex[:8]}"
    if kind == "postgres":
        pg = request.getfixturevalue("postgres")
        mono_url, svc_url = pg.create_database(f"m_{prefix}"), pg.create_database(f"s_{prefix}")
        schema = "public"
    else:
        mono_url = sqlite_url(tmp_path / "monolith.sqlite3")
        svc_url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
        schema = "main"
    plan = {"kafka": {"bootstrap_servers": kafka_bootstrap, "topic_prefix": prefix},
            "cdc": {"http": {"port": 0}, "state_dir": str(tmp_path / "cdc"),
                    "heartbeat_interval_s": 0.5},
            "services": {"notifications": {"data": {"tables": dict(DEFAULT_TABLES),
                                                    "owned": OWNED}}}}
    env = monolith_env(mono_url, tmp_path)
    run_monolith(["migrate", "-v", "0"], env, cwd=tmp_path)
    if kind == "sqlite":
        (tmp_path / "plan.yaml").write_text(
            "services:\n  notifications:\n    data:\n      tables:\n"
            + "".join(f"        {t}: {m}\n" for t, m in DEFAULT_TABLES.items()))
        run_monolith(["manage", "capture", "install", "--plan", str(tmp_path / "plan.yaml")],
                     env, cwd=tmp_path)
    run_monolith(["seed", "--customers", "6", "--products", "3", "--orders", "8",
                  "--no-migrate"], env, cwd=tmp_path)
    upgrade(svc_url)
    back_config = capture_config(plan, database_url=svc_url, bootstrap_servers=kafka_bootstrap,
                                 http_port=0, state_dir=tmp_path / "cdc-back")
    forward: PgCapture | SqliteCapture
    back: PgCapture | SqliteCapture
    if kind == "sqlite":
        install_capture(svc_url, ("notification", "preference"))
        forward = SqliteCapture(sqlite_config(plan, {"DATABASE_URL": mono_url}),
                                offsets=MemoryOffsetStore(), serve_http=False)
        back = SqliteCapture(back_config, offsets=MemoryOffsetStore(), serve_http=False)
    else:
        forward = PgCapture(parse_config(plan, {"DATABASE_URL": mono_url}),
                            offsets=MemoryOffsetStore(), serve_http=False)
        back = PgCapture(back_config, offsets=MemoryOffsetStore(), serve_http=False)
    svc_engine = make_engine(svc_url)
    tag_postgres_sessions(svc_engine, "notifications")  # as run_sink does with data.owned
    mono_engine = monolith_engine(mono_url)
    reversed_tables = reverse_tables(owned_tables(plan, "notifications"))
    sink = SinkConsumer(
        SinkConfig(bootstrap_servers=kafka_bootstrap, group_id=f"{prefix}-sink",
                   topics=topics_for(DEFAULT_TABLES, prefix, schema),
                   heartbeat_topic=f"__debezium-heartbeat.{prefix}", poll_timeout_s=0.2),
        notifications_applier(svc_engine, DEFAULT_TABLES))
    back_sink = SinkConsumer(
        SinkConfig(bootstrap_servers=kafka_bootstrap, group_id=f"{prefix}-back",
                   topics=back_topics(reversed_tables, back_prefix(prefix, "notifications"),
                                      schema), poll_timeout_s=0.2),
        reverse_applier(mono_engine, reversed_tables, sink="notifications-back"))
    stop = threading.Event()

    def converged() -> bool:
        return all(_rows(svc_engine, model, cols) == _rows(mono_engine, table, cols)
                   for table, (model, cols) in COLUMNS.items())

    def mono(sql: str, **params: Any) -> Any:
        return _one(mono_engine, sql, **params)

    try:
        with ExitStack() as stack:
            stack.enter_context(_thread(forward.run, forward.stop))
            stack.enter_context(_thread(back.run, back.stop))
            stack.enter_context(_thread(lambda: sink.run(stop), stop.set))
            stack.enter_context(_thread(lambda: back_sink.run(stop), stop.set))
            service = stack.enter_context(notifications_service(svc_url, tmp_path))
            _eventually(converged, 90, "the snapshot did not reach the service")

            # the service writes: a new notification, a monolith one marked read, a
            # preference
            created = httpx.post(f"{service.url}/api/notifications", json={
                "customer_id": 1, "channel": "email", "subject": "from the service",
                "body": "b"})
            assert created.status_code == 201 and created.json()["id"] == BASE
            assert httpx.patch(f"{service.url}/api/notifications/1",
                               json={"read": True}).status_code == 200
            assert httpx.put(f"{service.url}/api/notifications/preferences/2",
                             json={"channels": {"sms": True}}).status_code == 200
            _eventually(lambda: mono("SELECT subject FROM notifications_notification "
                                     "WHERE id = :i", i=BASE) == "from the service", 60,
                        "the service's notification did not reach the monolith")
            _eventually(converged, 60, "the service's changes did not all reach the monolith")
            assert mono("SELECT read_at FROM notifications_notification WHERE id = 1")

            # the monolith writes after the service's row arrived: an id of its own range
            # (on SQLite its counter untouched by the sink), and it reaches the service
            out = run_monolith(["manage", "shell", "-c", textwrap.dedent(CREATE_IN_MONOLITH)],
                               env, cwd=tmp_path).stdout
            mono_id = int(out.split("ID", 1)[1].split()[0])
            assert mono_id < BASE
            if kind == "sqlite":
                assert mono("SELECT seq FROM sqlite_sequence WHERE name = :n",
                            n="notifications_notification") == mono_id
            # a marker from the service after it: once it is back, any echo would be too
            marker = httpx.post(f"{service.url}/api/notifications", json={
                "customer_id": 2, "channel": "email", "subject": "marker", "body": "b"}).json()
            assert marker["id"] == BASE + 1
            _eventually(lambda: mono("SELECT 1 FROM notifications_notification WHERE id = :i",
                                     i=BASE + 1) == 1, 60, "marker did not arrive")
            _eventually(converged, 60, "the two databases did not converge")

            # no ping-pong: neither sink ever saw its own side's rows come back
            assert _one(svc_engine, "SELECT count(*) FROM strangler_sink_rows WHERE model = "
                        "'notification' AND row_key IN (:a, :b)", a=str(BASE),
                        b=str(BASE + 1)) == 0
            assert mono("SELECT count(*) FROM strangler_sink_rows WHERE row_key = :k",
                        k=str(mono_id)) == 0
            assert mono("SELECT count(*) FROM strangler_sink_rows WHERE model = "
                        "'notifications_notification'") >= 3  # BASE, 1 (read), BASE + 1
            assert sink.stats.dead_lettered.total() == 0
            assert back_sink.stats.dead_lettered.total() == 0
    finally:
        sink.close()
        back_sink.close()
        svc_engine.dispose()
        mono_engine.dispose()
        if kind == "postgres":
            _drop_slots(mono_url, svc_url)


def _drop_slots(*urls: str) -> None:
    """The session server must not keep WAL for these throwaway databases."""
    for url in urls:
        engine = sa.create_engine(engine_url(url))
        with engine.connect() as conn:
            name = conn.execute(sa.text("SELECT current_database()")).scalar_one()
            for (slot,) in conn.execute(sa.text(
                    "SELECT slot_name FROM pg_replication_slots WHERE database = :d"),
                    {"d": name}).all():
                conn.execute(sa.text("SELECT pg_drop_replication_slot(:s)"), {"s": slot})
            conn.commit()
        engine.dispose()


@pytest.mark.kafka
def test_drain_applies_what_is_on_the_broker_after_a_stop(tmp_path: Path,
                                                          kafka_bootstrap: str) -> None:
    """strangle up stops capture-back first, then sink-back drains: with a memory-only
    broker, a service write relayed just before the stop still reaches the monolith."""
    from cdc.sinks.reverse import drain

    prefix = f"d{uuid.uuid4().hex[:8]}"
    mono_url = sqlite_url(tmp_path / "monolith.sqlite3")
    svc_url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    run_monolith(["migrate", "-v", "0"], monolith_env(mono_url, tmp_path), cwd=tmp_path)
    upgrade(svc_url)
    install_capture(svc_url, ("notification", "preference"))
    plan = {"kafka": {"topic_prefix": prefix}, "services": {"notifications": {"data": {
        "tables": dict(DEFAULT_TABLES), "owned": OWNED}}}}
    back = SqliteCapture(capture_config(plan, database_url=svc_url,
                                        bootstrap_servers=kafka_bootstrap, http_port=0,
                                        state_dir=tmp_path / "cdc-back"),
                         offsets=MemoryOffsetStore(), serve_http=False)
    svc_engine = make_engine(svc_url)
    mono_engine = monolith_engine(mono_url)
    reversed_tables = reverse_tables(owned_tables(plan, "notifications"))
    consumer = SinkConsumer(
        SinkConfig(bootstrap_servers=kafka_bootstrap, group_id=f"{prefix}-back",
                   topics=back_topics(reversed_tables, back_prefix(prefix, "notifications"),
                                      "main"), poll_timeout_s=0.2),
        reverse_applier(mono_engine, reversed_tables, sink="notifications-back"))
    try:
        with _thread(back.run, back.stop):
            _eventually(lambda: back.status().get("state") == "streaming", 30, "no capture")
            with svc_engine.begin() as conn:
                conn.execute(sa.text(
                    "INSERT INTO notification (id, customer_id, channel, template, subject, "
                    "body, status, created_at) VALUES (:i, 1, 'email', '', 's', 'b', 'sent', "
                    "'2026-01-01 00:00:00')"), {"i": BASE + 7})
            _eventually(lambda: (back.status().get("published") or 0) >= 1, 30,
                        "the service's change was not relayed")
        assert _one(mono_engine, "SELECT count(*) FROM notifications_notification") == 0
        assert drain(consumer, quiet_s=2.0, limit_s=30.0) >= 1
        assert _one(mono_engine, "SELECT subject FROM notifications_notification WHERE id = :i",
                    i=BASE + 7) == "s"
    finally:
        consumer.close()
        svc_engine.dispose()
        mono_engine.dispose()


def test_the_command_refuses_a_plan_without_owned_tables(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from cdc.sinks.reverse import main

    plan = tmp_path / "plan.yaml"
    plan.write_text("services:\n  notifications:\n    data: {tables: {a_t: t}}\n")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        assert main(["--plan", str(plan), "--service", "notifications", "--bootstrap-servers",
                     "k:1", "--database-url", f"sqlite:///{tmp_path / 'm.sqlite3'}"]) == 2
    finally:  # main() configured JSON logging for the process; leave the session's alone
        root.handlers[:], root.level = handlers, level
    out = capfd.readouterr().out
    assert "reverse sink cannot start" in out and "lists no table: nothing comes back" in out
