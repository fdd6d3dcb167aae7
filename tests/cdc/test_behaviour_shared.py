"""Behaviour both CDC sources owe their consumers, run against each: the real monolith
(Django) on PostgreSQL captured by logical decoding, and on SQLite captured by triggers.

Known, documented difference: an UPDATE's ``before`` is the full old row on SQLite but
null on PostgreSQL with the default replica identity — tests compare ``before`` only
where both sources carry it (deletes: the key).
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from cdc.config import parse_config
from cdc.offsets import MemoryOffsetStore
from cdc.runner import PgCapture
from cdc.sources.postgres import catalog
from cdc.sources.sqlite.runner import SqliteCapture, sqlite_config
from cdc.types import pg_column_type
from tests.cdc.pg_support import TopicReader, query, reconstruct, running, values
from tests.cdc_sqlite.shop import Shop
from tests.support.monolith_server import monolith_env, run_monolith

pytestmark = pytest.mark.kafka

SOURCES = [pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"]
TABLES = {"catalog_category": "category", "catalog_product": "product"}


@dataclass
class MonolithSource:
    kind: str
    database_url: str
    workdir: Path
    bootstrap: str
    prefix: str

    def topic(self, table: str) -> str:
        schema = "public" if self.kind == "postgres" else "main"
        return f"{self.prefix}.{schema}.{table}"

    def django(self, code: str) -> None:
        env = monolith_env(self.database_url, self.workdir)
        run_monolith(["manage", "shell", "-c", textwrap.dedent(code)], env, cwd=self.workdir)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.kind == "postgres":
            return query(self.database_url, sql)
        return Shop(self.workdir).sql(sql)

    def capture(self) -> PgCapture | SqliteCapture:
        plan = {
            "kafka": {"bootstrap_servers": self.bootstrap, "topic_prefix": self.prefix},
            "cdc": {"http": {"port": 0}, "state_dir": str(self.workdir / "cdc"),
                    "heartbeat_interval_s": 0.5},
            "services": {"catalog": {"data": {"tables": TABLES}}},
        }
        env = {"DATABASE_URL": self.database_url}
        if self.kind == "postgres":
            return PgCapture(parse_config(plan, env), offsets=MemoryOffsetStore(),
                             serve_http=False)
        return SqliteCapture(sqlite_config(plan, env), offsets=MemoryOffsetStore(),
                             serve_http=False)


@contextmanager
def capturing(source: MonolithSource, capture: PgCapture | SqliteCapture) -> Iterator[None]:
    """Run the capture; afterwards drop its replication slot (slots are cluster-wide and
    would retain WAL and show up in other tests' slot counts)."""
    try:
        with running(capture):
            yield
    finally:
        if isinstance(capture, PgCapture):
            conn = catalog.connect(source.database_url)
            try:
                catalog.drop_slot(conn, capture.config.slot)
            finally:
                conn.close()


def open_source(kind: str, tmp_path: Path, bootstrap: str,
                request: pytest.FixtureRequest) -> MonolithSource:
    workdir = tmp_path / kind
    workdir.mkdir()
    prefix = f"s{uuid.uuid4().hex[:8]}"
    if kind == "postgres":
        url = request.getfixturevalue("postgres").create_database(f"shared_{prefix}")
        run_monolith(["migrate", "-v", "0"], monolith_env(url, workdir), cwd=workdir)
        return MonolithSource(kind, url, workdir, bootstrap, prefix)
    shop = Shop(workdir).setup()  # migrate + `capture install` for the plan's tables
    (workdir / "plan.yaml").write_text(
        "services:\n  catalog:\n    data: {tables: {catalog_category: c, catalog_product: p}}\n"
    )
    shop.manage("capture", "install")
    return MonolithSource(kind, f"sqlite:///{shop.db}", workdir, bootstrap, prefix)


@pytest.fixture(params=SOURCES)
def source(request: pytest.FixtureRequest, tmp_path: Path,
           kafka_bootstrap: str) -> MonolithSource:
    return open_source(request.param, tmp_path, kafka_bootstrap, request)


@pytest.fixture
def reader(source: MonolithSource) -> Iterator[Any]:
    readers: list[TopicReader] = []

    def make(table: str) -> TopicReader:
        readers.append(TopicReader(source.bootstrap, source.topic(table)))
        return readers[-1]

    yield make
    for r in readers:
        r.close()


WRITES = """
    import datetime as dt
    from decimal import Decimal
    from django.db import transaction
    from monolith.catalog.models import Category, Product
    at = dt.datetime(2024, 5, 1, 12, 30, 15, 250000, tzinfo=dt.timezone.utc)
    with transaction.atomic():
        Category.objects.create(id=1, name="Cat", slug="cat")
        Product.objects.create(id=7, sku="S-7", name="Mug", price=Decimal("19.99"),
                               category_id=1, stock=3, created_at=at, updated_at=at)
    Product.objects.filter(id=7).update(price=Decimal("5.5"), active=False)
    Product.objects.filter(id=7).delete()
"""


def test_inserts_updates_deletes_and_transactions(
    source: MonolithSource, reader: Any
) -> None:
    with capturing(source, source.capture()):
        source.django(WRITES)
        products = reader("catalog_product")
        categories = reader("catalog_category")
        got = products.read_until(lambda r: len(r) >= 4, timeout_s=60)
        cats = categories.read_until(lambda r: len(r) >= 1, timeout_s=30)
    ops = [(k, v and v["op"]) for k, v, _ in got]
    assert ops == [({"id": 7}, "c"), ({"id": 7}, "u"), ({"id": 7}, "d"), ({"id": 7}, None)]
    create, update, delete = values(got)[:3]
    numeric = pg_column_type(1700, ((12 << 16) | 2) + 4)
    assert create["before"] is None
    assert create["after"]["price"] == numeric.convert("19.99")
    assert create["after"]["active"] is True and create["after"]["stock"] == 3
    assert update["after"]["price"] == numeric.convert("5.50")
    assert update["after"]["active"] is False
    assert delete["before"]["id"] == 7 and delete["after"] is None
    tx = [e["source"]["txId"] for e in (values(cats)[0], create, update, delete)]
    assert tx[0] == tx[1] and len({tx[1], tx[2], tx[3]}) == 3
    assert {e["source"]["table"] for e in (create, update, delete)} == {"catalog_product"}
    positions = [(e["source"]["lsn"], e["source"]["sequence"]) for e in (create, update, delete)]
    assert positions == sorted(positions)


CHURN = """
    import random
    from django.db import transaction
    from monolith.catalog.models import Category
    rnd = random.Random(3)
    for i in range(150):
        with transaction.atomic():
            c = Category.objects.create(name=f"n{i}", slug=f"churn-{i}")
            Category.objects.filter(id=rnd.randint(1, 300)).update(description=f"d{i}")
        if i % 4 == 0:
            Category.objects.filter(id=rnd.randint(1, 300)).delete()
"""


def test_snapshot_with_concurrent_writes_reconstructs_the_table(
    source: MonolithSource, reader: Any
) -> None:
    source.django(
        "from monolith.catalog.models import Category\n"
        "Category.objects.bulk_create([Category(name=f'c{i}', slug=f'seed-{i}')"
        " for i in range(300)])\n"
    )
    import threading

    writer = threading.Thread(target=source.django, args=(CHURN,))
    writer.start()
    with capturing(source, source.capture()):
        writer.join(240)
        rows = source.rows("SELECT id, name, description FROM catalog_category")
        expected = {i: (n, d) for i, n, d in rows}
        topic = reader("catalog_category")

        def caught_up(records: list[Any]) -> bool:
            table = reconstruct(records)
            return {k: (v["name"], v["description"]) for k, v in table.items()} == expected

        deadline = time.monotonic() + 90
        while not caught_up(topic.records) and time.monotonic() < deadline:
            topic.read_until(caught_up, timeout_s=5)
    table = reconstruct(topic.records)
    assert {k: (v["name"], v["description"]) for k, v in table.items()} == expected
    assert any(v["op"] == "r" for v in values(topic.records) if v)


@pytest.mark.postgres
def test_both_sources_write_the_same_events_for_the_same_writes(
    tmp_path: Path, kafka_bootstrap: str, request: pytest.FixtureRequest
) -> None:
    """Byte-level parity: same schemas and payloads for the same Django writes."""
    got: dict[str, list[Any]] = {}
    for kind in ("postgres", "sqlite"):
        src = open_source(kind, tmp_path, kafka_bootstrap, request)
        with capturing(src, src.capture()):
            src.django(WRITES)
            products = TopicReader(kafka_bootstrap, src.topic("catalog_product"))
            products.read_until(lambda r: len(r) >= 4, timeout_s=60)
        got[kind] = products.raw
        products.close()
    pg, lite = ([orjson.loads(v) for _, v in got[k] if v] for k in ("postgres", "sqlite"))
    assert [e["payload"]["op"] for e in pg] == [e["payload"]["op"] for e in lite]
    for a, b in zip(pg, lite, strict=True):
        fields_a = {f["field"]: f for f in a["schema"]["fields"] if f["field"] in ("after",)}
        fields_b = {f["field"]: f for f in b["schema"]["fields"] if f["field"] in ("after",)}
        assert fields_a["after"]["fields"] == fields_b["after"]["fields"]
        assert a["payload"]["after"] == b["payload"]["after"]
    keys = {k: [orjson.loads(key) for key, _ in got[k]] for k in got}
    for a, b in zip(keys["postgres"], keys["sqlite"], strict=True):
        assert a["payload"] == b["payload"]
        assert a["schema"]["fields"] == b["schema"]["fields"]


ALL_TABLES = ("accounts_customer", "catalog_category", "catalog_product", "orders_order",
              "orders_orderline", "orders_payment", "notifications_notification")


@pytest.mark.postgres
def test_both_sources_snapshot_the_seeded_shop_identically(
    tmp_path: Path, kafka_bootstrap: str, request: pytest.FixtureRequest
) -> None:
    """Every column of every seeded table (the deterministic seed) as the same payload."""
    got: dict[str, dict[str, dict[Any, Any]]] = {}
    for kind in ("postgres", "sqlite"):
        src = open_source(kind, tmp_path, kafka_bootstrap, request)
        env = monolith_env(src.database_url, src.workdir)
        if kind == "sqlite":
            args = ["manage", "capture", "install"]
            for table in ALL_TABLES:
                args += ["--table", table]
            run_monolith(args, env, cwd=src.workdir)
        run_monolith(["seed", "--no-migrate", "--customers", "15", "--products", "8",
                      "--orders", "25"], env, cwd=src.workdir)
        counts = {t: src.rows(f"SELECT count(*) FROM {t}")[0][0] for t in ALL_TABLES}
        plan_tables = {t: t for t in ALL_TABLES}
        capture = src.capture()
        capture.config = dataclasses.replace(  # capture every seeded table
            capture.config, tables=tuple(f"public.{t}" for t in plan_tables)
        )
        readers = {t: TopicReader(kafka_bootstrap, src.topic(t)) for t in ALL_TABLES}
        with capturing(src, capture):
            for table, reader in readers.items():
                reader.read_until(lambda r, n=counts[table]: len(r) >= n, timeout_s=60)
        got[kind] = {t: reconstruct(r.records) for t, r in readers.items()}
        for r in readers.values():
            r.close()
        assert {t: len(rows) for t, rows in got[kind].items()} == counts
    for table in ALL_TABLES:
        for key, row in got["postgres"][table].items():
            other = got["sqlite"][table][key]
            diff = {c: (v, other.get(c)) for c, v in row.items() if other.get(c) != v}
            assert not diff, f"{table} {key}: {diff}"


CHURN_WRITER = """
import time
from django.db import transaction
from monolith.catalog.models import Category
tag = {tag!r}
for i in range({n}):
    with transaction.atomic():
        c = Category.objects.create(name=f"{{tag}}-{{i}}", slug=f"{{tag}}-{{i}}")
        Category.objects.filter(id=c.id).update(description=f"v{{i}}")
    if i % 5 == 4:
        Category.objects.filter(slug=f"{{tag}}-{{i - 1}}").delete()
    time.sleep(0.01)
"""


def _run_cdc(plan: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "strangle"), "cdc", "run", "--plan", str(plan)],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env,
    )


def _wait_streaming(status: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        if status.exists() and '"streaming"' in status.read_text():
            return
        time.sleep(0.05)
    raise AssertionError("capture did not start streaming: " + log.read_text()[-2000:])


@pytest.mark.slow
def test_kill_9_of_strangle_cdc_run_under_concurrent_writers_loses_nothing(
    source: MonolithSource, reader: Any
) -> None:
    plan = source.workdir / "cdc-plan.yaml"
    plan.write_text(yaml.safe_dump({
        "kafka": {"bootstrap_servers": source.bootstrap, "topic_prefix": source.prefix},
        "cdc": {"database_url": source.database_url, "state_dir": str(source.workdir / "st"),
                "heartbeat_interval_s": 0.5, "message_timeout_s": 10,
                "http": {"host": "127.0.0.1", "port": 0}},
        "services": {"catalog": {"data": {"tables": TABLES}}},
    }))
    log, status = source.workdir / "cdc.log", source.workdir / "st" / "status.json"
    env = monolith_env(source.database_url, source.workdir)
    writers: list[subprocess.Popen[str]] = []
    rng = random.Random(5)
    kills = 0
    proc = _run_cdc(plan, log)
    try:
        _wait_streaming(status, proc, log)
        writers = [
            subprocess.Popen([sys.executable, "-m", "monolith", "manage", "shell", "-c",
                              CHURN_WRITER.format(tag=f"w{n}", n=200)],
                             env=env, cwd=source.workdir, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            for n in range(2)
        ]
        while any(w.poll() is None for w in writers) or kills < 4:
            time.sleep(rng.uniform(0.8, 2.0))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
            proc = _run_cdc(plan, log)
        for w in writers:
            _, err = w.communicate(timeout=120)
            assert w.returncode == 0, err
        rows = source.rows("SELECT id, name, description FROM catalog_category")
        expected = {i: (n, d) for i, n, d in rows}
        topic = reader("catalog_category")

        def caught_up(records: list[Any]) -> bool:
            table = reconstruct(records)
            return {k: (v["name"], v["description"]) for k, v in table.items()} == expected

        topic.read_until(caught_up, timeout_s=150)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-2000:]
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if source.kind == "postgres":
            conn = catalog.connect(source.database_url)
            try:
                catalog.drop_slot(conn, f"strangler_{source.prefix}")
            finally:
                conn.close()
    table = reconstruct(topic.records)
    assert {k: (v["name"], v["description"]) for k, v in table.items()} == expected
    assert len(expected) > 300 and kills >= 4
    by_position: dict[tuple[str, str], set[str]] = {}
    for key, value, _ in topic.records:
        if value and value["op"] != "r":
            position = (value["source"]["sequence"], str(key))
            by_position.setdefault(position, set()).add(repr((value["op"], value["after"])))
    assert all(len(v) == 1 for v in by_position.values()), "a duplicate differs"
