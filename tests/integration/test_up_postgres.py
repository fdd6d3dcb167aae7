"""`strangle up` on PostgreSQL: the monolith and the notifications service each on their
own PostgreSQL database, change capture by logical replication (pgoutput), the real
embedded broker, the sink — and traffic through the proxy.

The stack must come up in sync (the service holds the monolith's mapped tables), the
shadow comparison of the service against the monolith must be clean, and an
order placed through the proxy must produce a notification in the monolith that reaches
the service's PostgreSQL database through CDC; after the cutover to `service` (a plan
edit) the monolith sends through the service, and the service's four mapped tables
equal the monolith's row by row. After a restart on the same databases it all holds.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from cdc.sinks.sqlalchemy_applier import engine_url
from extracted.notifications.config import DEFAULT_ID_BASE as ID_BASE
from tests.support.monolith_server import free_port
from tests.support.postgres import PostgresServer
from tests.support.stack import StackRun, edit_stage, stack_plan, user_env

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.kafka,
              pytest.mark.timeout(420)]

TABLES = {"accounts_customer": "customer",
          "notifications_notificationtemplate": "template",
          "notifications_notificationpreference": "preference",
          "notifications_notification": "notification"}
COLUMNS = ["id", "customer_id", "channel", "template", "subject", "body", "status"]
COMPARED = {
    "accounts_customer": ["id", "email", "name", "phone", "created_at", "updated_at"],
    "notifications_notificationtemplate": ["id", "key", "channel", "subject", "body",
                                           "created_at", "updated_at"],
    "notifications_notificationpreference": ["id", "customer_id", "channel", "enabled",
                                             "updated_at"],
    "notifications_notification": ["id", "customer_id", "channel", "template", "subject",
                                   "body", "status", "created_at", "sent_at", "read_at"],
}


@pytest.fixture
def databases(postgres: PostgresServer) -> Iterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:8]
    mono, svc = postgres.create_database(f"up_mono_{tag}"), postgres.create_database(
        f"up_svc_{tag}")
    yield mono, svc
    # the CDC runner's replication slot would keep WAL on the session server forever
    engine = sa.create_engine(engine_url(postgres.url()))
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_drop_replication_slot(slot_name) FROM "
                             "pg_replication_slots WHERE database IN (:db, :svc) "
                             "AND NOT active"),
                     {"db": f"up_mono_{tag}", "svc": f"up_svc_{tag}"})  # + the way back's
    engine.dispose()


def _query(url: str, sql: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(engine_url(url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params).all())
    finally:
        engine.dispose()


def _counts(url: str, tables: list[str]) -> list[int]:
    return [_query(url, f'SELECT count(*) FROM "{t}"')[0][0] for t in tables]


def _eventually(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def test_strangle_up_on_postgresql_syncs_and_carries_an_order_notification(
    tmp_path: Path, databases: tuple[str, str]
) -> None:
    mono_url, svc_url = databases
    run = StackRun.start(tmp_path, traffic=True, extra=("--traffic-rate", "4"),
                         env={"DATABASE_URL": mono_url, "NOTIFICATIONS_DATABASE_URL": svc_url})
    try:
        # nothing lives in SQLite files: both databases are the PostgreSQL ones
        assert not (run.var / "monolith.sqlite3").exists()
        assert not (run.var / "notifications.sqlite3").exists()
        assert "is in sync with the monolith" in run.stderr()
        cdc = httpx.get(f"http://127.0.0.1:{run.ports['cdc']}/status", timeout=5).json()
        assert cdc.get("slot") and cdc.get("connector") != "sqlite", cdc  # pgoutput
        # the initial snapshot reached the service: every mapped table, at least as many rows
        mono_counts = _counts(mono_url, list(TABLES))
        assert mono_counts[0] and mono_counts[1] and mono_counts[3], mono_counts  # seeded
        assert all(s >= m for m, s in zip(mono_counts, _counts(svc_url, list(TABLES.values())),
                                          strict=True))

        _order_reaches_the_service(run, mono_url, svc_url)

        # the same read through the proxy (shadow: the monolith answers, the service is
        # compared), and the traffic so far failed nothing
        # shadow on PostgreSQL is clean: `strangle report` from a second terminal
        def report() -> dict[str, Any]:
            done = subprocess.run(
                [sys.executable, "-c", "from strangler_proxy.cli import main; main()",
                 "report", "notifications", "--format", "json"], cwd=run.workdir,
                env=run.cli_env(), capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            return dict(json.loads(done.stdout))

        _eventually(lambda: report()["samples"] >= 20, 90, "no shadow comparisons")
        compared = report()
        assert compared["mismatch_rate"] == 0 and compared["error_rate"] == 0, compared

        # the cutover by plan edit: the monolith now sends through the service's API,
        # which stores the notification in its PostgreSQL database itself
        sent = _query(svc_url, "SELECT count(*) FROM send_request")[0][0]
        edit_stage(run.plan_path, "service")
        _eventually(lambda: _query(svc_url, "SELECT count(*) FROM send_request")[0][0]
                    > sent + 1, 60, "orders did not send their notifications via the service")

        # CDC caught up: the service's mapped tables equal the monolith's, row by row
        # (two-way: the notifications the service sent itself are in the monolith too)
        deadline = time.monotonic() + 30
        while (problems := _compared(mono_url, svc_url)) and time.monotonic() < deadline:
            time.sleep(1)
        assert problems == []

        status = run.last_status()
        assert status["components"]["sink"]["up"] and status["components"]["cdc"]["up"]
        assert status["proxy"]["errors_5xx"] == 0
        stats = json.loads((run.var / "traffic.json").read_text())
        assert stats["requests"] > 0 and stats["failed"] == 0, stats
    finally:
        code = run.stop()
    assert code == 0, run.stderr()

    # a restart on the same databases (a new memory-only broker): the replication slot
    # resumes where it stood, the sink re-reads the new broker's topics, still in sync;
    # back at shadow, an order's notification flows through CDC again
    edit_stage(run.plan_path, "shadow")
    again = StackRun.start(tmp_path, plan_path=run.plan_path, ports=run.ports, env=run.env)
    try:
        assert "is in sync with the monolith" in again.stderr()
        _order_reaches_the_service(again, mono_url, svc_url)
    finally:
        assert again.stop() == 0, again.stderr()


def _canonical(value: Any) -> Any:
    """Django keeps timestamptz, the service naive UTC timestamps: compare in UTC."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _rows(url: str, table: str, columns: list[str]) -> dict[int, tuple[Any, ...]]:
    found = _query(url, f"SELECT {', '.join(columns)} FROM {table}")
    return {int(row[0]): tuple(_canonical(v) for v in row) for row in found}


def _compared(mono_url: str, svc_url: str) -> list[str]:
    problems = []
    for source, columns in COMPARED.items():
        mono = _rows(mono_url, source, columns)
        svc = _rows(svc_url, TABLES[source], columns)
        if source == "notifications_notification" and not any(i >= ID_BASE for i in mono):
            # two-way sync (data.owned): what the service sent is in the monolith too
            problems.append("no notification sent by the service came back to the monolith")
        if mono != svc:
            diff = sorted(set(mono.items()) ^ set(svc.items()), key=str)[:3]
            problems.append(f"{source}: {len(mono)} vs {len(svc)} rows; e.g. {diff}")
    return problems


def _order_reaches_the_service(run: StackRun, mono_url: str, svc_url: str) -> None:
    """An order through the proxy: the monolith notifies the customer, and CDC carries
    that notification into the service's own database, equal column by column."""
    before = _query(mono_url, "SELECT coalesce(max(id), 0) FROM notifications_notification "
                              "WHERE id < :base", base=ID_BASE)  # the monolith's own range
    customer = _query(mono_url, "SELECT id FROM accounts_customer ORDER BY id LIMIT 1")[0][0]
    product = _query(mono_url, "SELECT id FROM catalog_product WHERE active AND stock > 5 "
                               "ORDER BY id LIMIT 1")[0][0]
    placed = httpx.post(f"{run.url}/api/orders", timeout=10,
                        headers={"x-customer-id": str(customer)},
                        json={"customer_id": customer,
                              "lines": [{"product_id": product, "quantity": 1}]})
    assert placed.status_code == 201, placed.text
    mine = (f"SELECT {', '.join(COLUMNS)} FROM %s WHERE id > :after AND customer_id = :c "
            "AND template = 'order_placed' AND subject LIKE :order ORDER BY id")
    params = {"after": before[0][0], "c": customer, "order": f"%#{placed.json()['id']} %"}

    def in_monolith() -> list[Any]:
        return _query(mono_url, mine % "notifications_notification", **params)

    _eventually(lambda: bool(in_monolith()), 30, "the order sent no notification")
    _eventually(lambda: _query(svc_url, mine % "notification", **params) == in_monolith(), 60,
                "the order's notification did not reach the service's database")
    listed = httpx.get(f"{run.url}/api/notifications", params={"customer_id": customer},
                       headers={"x-customer-id": str(customer)}, timeout=10)
    assert listed.status_code == 200
    assert {n["id"] for n in listed.json()["results"]} >= {r[0] for r in in_monolith()}


def test_strangle_up_refuses_a_postgresql_that_cannot_replicate_before_starting_anything(
    tmp_path: Path, postgres: PostgresServer, databases: tuple[str, str]
) -> None:
    """A monolith role without REPLICATION: the CDC runner could never start, so `up`
    says so (with the fix) before migrating or starting a single component."""
    mono_url, svc_url = databases
    role = f"norepl_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(engine_url(postgres.url()), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
    try:
        stack_plan(tmp_path / "plan.yaml")
        done = subprocess.run(
            [sys.executable, "-c", "from strangler_proxy.cli import main; main()", "up",
             "--plan", str(tmp_path / "plan.yaml"), "--port", str(free_port()),
             "--no-traffic"],
            cwd=tmp_path, capture_output=True, text=True, timeout=60, env=user_env({
                "DATABASE_URL": mono_url.replace(f"//{postgres.user}@", f"//{role}@"),
                "NOTIFICATIONS_DATABASE_URL": svc_url}))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP ROLE "{role}"'))
        admin.dispose()
    assert done.returncode == 1, done.stderr
    assert "cannot feed change data capture" in done.stderr
    assert f'ALTER ROLE "{role}" REPLICATION' in done.stderr
    assert "migrating" not in done.stderr and "ready in" not in done.stderr
    assert _query(mono_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                  ) == [(0,)]  # nothing was migrated
