"""Shadow lag classification end to end, every component real: the Django monolith
(SQLite with trigger capture, or PostgreSQL with logical decoding), the CDC source
publishing to the embedded broker, the notifications sink applying to the service's own
database, the notifications service (honest, and a copy with one regression) under
uvicorn, and ``strangle proxy`` in shadow stage with the comparison engine and its lag
re-check as sink. On SQLite the monolith reports its captured position and the re-check
waits for exactly that; on PostgreSQL it reports none and the re-check asks again.

1. A read right after a write the service has not applied yet is classified ``lag``,
   not ``mismatch`` — the service is held behind by pausing its sink.
2. A service that returns a wrong field is a ``mismatch`` under concurrent writes,
   including reads made while it was behind (re-checked once it caught up, still wrong).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

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
from strangler_proxy.plan.io import load_plan
from strangler_proxy.shadow.observation import SOURCE_POSITION_HEADER
from strangler_proxy.shadow.report import EndpointReport
from strangler_proxy.shadow.sink import service_report
from tests.extracted.service_server import notifications_service
from tests.support.monolith_server import MonolithServer, Seed, start_monolith
from tests.support.servers import Server, start_proxy, start_uvicorn

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PLAN = """
version: 1
monolith: {url: "MONOLITH"}
shadow_store: {url: "sqlite:///shadow.db"}
services:
  notifications:
    url: "CANDIDATE"
    routes:
      - {path: /api/notifications, methods: [GET]}
      - {path: "/api/notifications/{id}", methods: [GET]}
    stage: shadow
    shadow: {sample: 1.0, noise_sample: 0}
    gates: {min_samples: 1, max_mismatch_rate: 0.01, max_error_rate: 0.01}
"""


@dataclass
class Sink:
    """The notifications sink in a thread; ``pause()`` holds the service behind."""

    bootstrap: str
    prefix: str
    schema: str
    engine: sa.Engine
    consumer: SinkConsumer | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.consumer = SinkConsumer(
            SinkConfig(bootstrap_servers=self.bootstrap, group_id=f"{self.prefix}-sink",
                       topics=topics_for(DEFAULT_TABLES, self.prefix, self.schema),
                       heartbeat_topic=f"__debezium-heartbeat.{self.prefix}",
                       poll_timeout_s=0.1),
            notifications_applier(self.engine, DEFAULT_TABLES))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.consumer.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def pause(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(30)
        if self.consumer is not None:
            self.consumer.close()
        self.consumer = self.thread = None


@dataclass
class Stack:
    tmp: Path
    kind: str  # "sqlite" or "postgres"
    monolith: MonolithServer
    sink: Sink
    honest: Path  # plan of a proxy shadowing the real service
    tampered: Path  # plan of a proxy shadowing the service with a wrong field
    proxies: dict[Path, Server]
    service_url: str

    def newest(self, base: str) -> object:
        response = httpx.get(f"{base}/api/notifications", timeout=30,
                             params={"ordering": "-id", "page_size": 50})
        assert response.status_code == 200, response.text
        return response.json()

    def wait_in_sync(self, timeout_s: float = 90) -> None:
        """Until the service serves the newest notifications as the monolith does."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.newest(self.monolith.url) == self.newest(self.service_url):
                return
            time.sleep(0.2)
        raise AssertionError("the service did not catch up with the monolith")

    def create_notification(self, customer: int, subject: str) -> int:
        response = httpx.post(f"{self.monolith.url}/api/notifications", timeout=30, json={
            "customer_id": customer, "channel": "email", "subject": subject, "body": "b"})
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def get(self, plan: Path, path: str, **params: object) -> httpx.Response:
        response = httpx.get(f"{self.proxies[plan].url}{path}", params=params, timeout=30)
        assert response.status_code < 500, response.text
        return response

    def rechecks(self, plan: Path) -> dict[str, float]:
        text = httpx.get(f"{self.proxies[plan].url}/_strangler/metrics", timeout=10).text
        found = re.findall(r'strangler_shadow_lag_rechecks_total\{result="(\w+)"\} (\S+)', text)
        return {name: float(value) for name, value in found}


def endpoints(plan: Path) -> dict[str, EndpointReport]:
    report = service_report(load_plan(plan), "notifications")
    return {e.endpoint.route: e for e in report.endpoints}


def totals(plan: Path) -> tuple[int, int, int]:
    """(compared, mismatched, lag) over every endpoint."""
    found = endpoints(plan).values()
    return (sum(e.compared for e in found), sum(e.raw_mismatched for e in found),
            sum(e.lag for e in found))


def wait_compared(plan: Path, n: int, timeout_s: float = 60) -> tuple[int, int, int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = totals(plan)
        if got[0] >= n:
            return got
        time.sleep(0.3)
    raise AssertionError(f"only {totals(plan)} of {n} comparisons stored")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres",
                                                                marks=pytest.mark.postgres)])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          kafka_bootstrap: str) -> Iterator[Stack]:
    kind = request.param
    tmp = tmp_path_factory.mktemp(f"shadow-lag-{kind}")
    prefix = f"lag{uuid.uuid4().hex[:8]}"
    (tmp / "mono").mkdir()
    database_url = None
    if kind == "postgres":
        postgres = request.getfixturevalue("postgres")
        database_url = postgres.create_database(f"lag_{prefix}")
    monolith = start_monolith(database_url, seed=Seed(customers=6, products=4, orders=6),
                              workdir=tmp / "mono")
    servers: list[Server] = []
    sink: Sink | None = None
    capture: SqliteCapture | PgCapture | None = None
    capture_thread: threading.Thread | None = None
    try:
        plan = {"kafka": {"bootstrap_servers": kafka_bootstrap, "topic_prefix": prefix},
                "cdc": {"http": {"port": 0}, "state_dir": str(tmp / "cdc"),
                        "heartbeat_interval_s": 0.5},
                "services": {"notifications": {"data": {"tables": dict(DEFAULT_TABLES)}}}}
        env = {"DATABASE_URL": monolith.database_url}
        if kind == "sqlite":
            monolith.manage("manage", "capture", "install",
                            *(arg for t in DEFAULT_TABLES for arg in ("--table", t)))
            capture = SqliteCapture(sqlite_config(plan, env), offsets=MemoryOffsetStore(),
                                    serve_http=False)
        else:
            capture = PgCapture(parse_config(plan, env), offsets=MemoryOffsetStore(),
                                serve_http=False)
        capture_thread = threading.Thread(target=capture.run, daemon=True)
        capture_thread.start()
        service_db = f"sqlite:///{tmp / 'service.sqlite3'}"
        upgrade(service_db)
        sink = Sink(kafka_bootstrap, prefix, "main" if kind == "sqlite" else "public",
                    sa.create_engine(engine_url(service_db)))
        sink.start()
        with notifications_service(service_db, tmp) as service:
            tampered = start_uvicorn("tests.support.tampering_service:app", {
                "NOTIFICATIONS_DATABASE_URL": service_db, "NOTIFICATIONS_BACKEND": "outbox",
                "NOTIFICATIONS_OUTBOX": str(tmp / "outbox-tampered.jsonl")})
            servers.append(tampered)
            plans = {}
            for name, candidate in (("honest", service.url), ("tampered", tampered.url)):
                (tmp / name).mkdir()
                plans[name] = tmp / name / "plan.yaml"
                plans[name].write_text(PLAN.replace("MONOLITH", monolith.url)
                                       .replace("CANDIDATE", candidate))
            # a wrong field is re-checked until the wait runs out: keep that short
            proxies = {
                plans["honest"]: start_proxy(plans["honest"], {"STRANGLER_ACCESS_LOG": "0"}),
                plans["tampered"]: start_proxy(plans["tampered"], {
                    "STRANGLER_ACCESS_LOG": "0", "STRANGLER_LAG_RECHECK_MAX_WAIT_S": "3"}),
            }
            servers.extend(proxies.values())
            stack = Stack(tmp, kind, monolith, sink, plans["honest"], plans["tampered"],
                          proxies, service.url)
            stack.wait_in_sync()
            yield stack
    finally:
        for server in reversed(servers):
            server.stop()
        if sink is not None:
            sink.pause()
            sink.engine.dispose()
        if capture is not None:
            capture.stop()
        if capture_thread is not None:
            capture_thread.join(30)
        monolith.stop()
        if kind == "postgres":  # the slot would keep WAL on the session server forever
            admin = sa.create_engine(engine_url(request.getfixturevalue("postgres").url()))
            with admin.begin() as conn:
                conn.execute(sa.text("SELECT pg_drop_replication_slot(slot_name) FROM "
                                     "pg_replication_slots WHERE database = :db AND NOT active"),
                             {"db": f"lag_{prefix}"})
            admin.dispose()


def test_a_read_right_after_an_unapplied_write_is_lag_not_mismatch(stack: Stack) -> None:
    plan = stack.honest
    stack.wait_in_sync()
    assert stack.get(plan, "/api/notifications", customer_id=1).status_code == 200
    assert wait_compared(plan, 1) == (1, 0, 0)  # in sync: a plain match

    stack.sink.pause()  # the service stops applying: it is now behind every new write
    new_id = stack.create_notification(2, "Your order shipped")
    listing = stack.get(plan, "/api/notifications", customer_id=2, ordering="-id")
    assert listing.json()["results"][0]["id"] == new_id  # the client got the monolith's
    position = listing.headers.get(SOURCE_POSITION_HEADER)  # what the engine compares with
    assert position.startswith("seq:") if stack.kind == "sqlite" else position is None
    assert stack.get(plan, f"/api/notifications/{new_id}").status_code == 200
    behind = httpx.get(f"{stack.service_url}/api/notifications/{new_id}", timeout=10)
    assert behind.status_code == 404  # the candidate really did not have it

    time.sleep(1.0)  # the re-check keeps waiting for the service to catch up
    stack.sink.start()
    compared, mismatched, lag = wait_compared(plan, 3)
    assert (compared, mismatched, lag) == (3, 0, 2)
    by_route = endpoints(plan)
    assert by_route["/api/notifications"].lag == 1
    assert by_route["/api/notifications/{id}"].lag == 1
    assert all(not e.flagged and e.verdict == "pass" for e in by_route.values())
    rechecks = stack.rechecks(plan)
    assert rechecks.get("deferred") == 2 and rechecks.get("lag") == 2, rechecks


def test_a_wrong_field_is_a_mismatch_under_concurrent_writes(stack: Stack) -> None:
    plan = stack.tampered
    stack.wait_in_sync()
    existing = stack.create_notification(3, "Welcome")
    stack.wait_in_sync()
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:  # steady captured writes for other customers all along
        while not stop.is_set():
            written.append(stack.create_notification(4 + len(written) % 2, "Receipt"))
            stop.wait(0.05)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        caught_up_reads = 0
        for _ in range(4):  # the sink running, a little behind the writer
            stack.get(plan, f"/api/notifications/{existing}")
            stack.get(plan, "/api/notifications", customer_id=3)
            caught_up_reads += 2
        stack.sink.pause()  # now certainly behind the monolith's position
        time.sleep(0.3)
        behind_reads = 0
        for _ in range(3):
            stack.get(plan, f"/api/notifications/{existing}")
            stack.get(plan, "/api/notifications", customer_id=3)
            behind_reads += 2
        time.sleep(0.5)
        stack.sink.start()
        total = caught_up_reads + behind_reads
        compared, mismatched, lag = wait_compared(plan, total, timeout_s=90)
    finally:
        stop.set()
        thread.join(10)
    assert len(written) > 10
    assert (compared, mismatched, lag) == (total, total, 0)
    for route, endpoint in endpoints(plan).items():
        assert endpoint.verdict == "fail", route
        assert any("subject" in p for p in endpoint.flagged), (route, endpoint.flagged)
    rechecks = stack.rechecks(plan)
    # the reads made while the service was behind were re-checked, not excused as lag
    assert rechecks.get("deferred", 0) >= behind_reads, rechecks
    not_excused = rechecks.get("mismatch", 0) + rechecks.get("unresolved", 0)
    assert not_excused == rechecks["deferred"] and not rechecks.get("lag"), rechecks
    if stack.kind == "postgres":  # no monolith position: every read was re-checked
        assert rechecks["deferred"] == total, rechecks
