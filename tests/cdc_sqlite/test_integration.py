"""The real monolith on SQLite → triggers → relay subprocess → the embedded broker."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from cdc.types import pg_column_type
from tests.cdc_sqlite.shop import Events, Shop
from tests.support.monolith_server import monolith_env, run_monolith

pytestmark = pytest.mark.kafka


def replay(changes: list[dict[str, Any]], table: str) -> dict[int, dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = {}
    for event in sorted(changes, key=lambda e: int(e["source"]["lsn"])):
        if event["source"]["table"] != table:
            continue
        if event["op"] == "d":
            rows.pop(event["before"]["id"], None)
        else:
            rows[event["after"]["id"]] = event["after"]
    return rows


@pytest.fixture
def shop(tmp_path: Path) -> Any:
    shop = Shop(tmp_path).setup()
    yield shop
    shop.kill_relay()


def test_inserts_updates_deletes_arrive_with_full_images(shop: Shop, kafka_bootstrap: str) -> None:
    shop.django(
        "from monolith.catalog.models import Category\n"
        "Category.objects.create(id=1, name='Before', slug='before')\n"
    )
    events = Events(kafka_bootstrap, shop.topics())
    shop.start_relay(kafka_bootstrap)
    events.poll_until(lambda e: len(e.changes()) >= 1, what="the snapshot")
    snap = events.changes()[0]
    assert (snap["op"], snap["after"]["name"]) == ("r", "Before")
    assert snap["source"]["snapshot"] == "last"
    shop.django(
        "from decimal import Decimal\n"
        "from django.db import transaction\n"
        "from monolith.catalog.models import Category, Product\n"
        "with transaction.atomic():\n"
        "    p = Product.objects.create(id=7, sku='S1', name='Mug', price=Decimal('19.99'),"
        " category_id=1)\n"
        "    Product.objects.filter(id=7).update(price=Decimal('5.5'), active=False)\n"
        "Product.objects.filter(id=7).delete()\n"
    )
    events.poll_until(lambda e: len(e.changes()) >= 4, what="c, u, d")
    create, update, delete = events.changes()[1:4]
    numeric = pg_column_type(1700, ((12 << 16) | 2) + 4)
    assert [e["op"] for e in (create, update, delete)] == ["c", "u", "d"]
    assert create["before"] is None
    assert create["after"]["price"] == numeric.convert("19.99")
    assert create["after"]["active"] is True and create["after"]["category_id"] == 1
    assert update["before"] == create["after"]
    assert update["after"]["price"] == numeric.convert("5.50")
    assert update["after"]["active"] is False
    assert delete["before"] == update["after"] and delete["after"] is None
    assert create["source"]["txId"] == update["source"]["txId"] != delete["source"]["txId"]
    assert create["source"]["connector"] == "sqlite"
    events.poll_until(
        lambda e: any(v is None for _, _, v in e.records), what="the tombstone after the delete"
    )
    tombstone = [k for _, k, v in events.records if v is None]
    assert tombstone == [{"id": 7}]
    events.close()


def _pg_row(dsn: str, table: str, key: int) -> dict[str, tuple[str | None, int, int]]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT attname, atttypid, atttypmod FROM pg_attribute WHERE attrelid = %s::regclass"
            " AND attnum > 0 AND NOT attisdropped", (table,)
        )
        columns = cur.fetchall()
        texts = ", ".join(f'"{name}"::text' for name, _, _ in columns)
        cur.execute(f"SELECT {texts} FROM {table} WHERE id = %s", (key,))
        values = cur.fetchone()
    conn.close()
    pairs = zip(columns, values, strict=True)
    return {name: (value, oid, typmod) for (name, oid, typmod), value in pairs}


SAME_ROW = (
    "import datetime as dt\n"
    "from decimal import Decimal\n"
    "from monolith.catalog.models import Category, Product\n"
    "Category.objects.create(id=3, name='Cat', slug='cat')\n"
    "Product.objects.create(id=11, sku='X-1', name='Lamp \\u00e9', description='d',"
    " category_id=3, price=Decimal('1234.5'), currency='EUR', active=False, stock=4,"
    " created_at=dt.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=dt.timezone.utc),"
    " updated_at=dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc))\n"
)


@pytest.mark.postgres
def test_values_match_postgres_for_the_same_django_row(
    shop: Shop, kafka_bootstrap: str, postgres: Any, tmp_path: Path
) -> None:
    pg_url = postgres.create_database("capture_same_row")
    pg_env = monolith_env(pg_url, tmp_path)
    run_monolith(["migrate", "-v", "0"], pg_env, cwd=tmp_path)
    run_monolith(["manage", "shell", "-c", SAME_ROW], pg_env, cwd=tmp_path)
    shop.django(SAME_ROW)
    events = Events(kafka_bootstrap, shop.topics())
    shop.start_relay(kafka_bootstrap)
    events.poll_until(
        lambda e: any(c["source"]["table"] == "catalog_product" for c in e.changes()),
        what="the product",
    )
    ours = next(c for c in events.changes() if c["source"]["table"] == "catalog_product")
    theirs = _pg_row(postgres.dsn("capture_same_row"), "catalog_product", 11)
    assert set(ours["after"]) == set(theirs)
    for column, (text, oid, typmod) in theirs.items():
        expected = None if text is None else pg_column_type(oid, typmod).convert(text)
        assert ours["after"][column] == expected, column
    events.close()


WRITER = """
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


@pytest.mark.slow
def test_kill_9_of_the_relay_with_concurrent_writers_loses_nothing(
    shop: Shop, kafka_bootstrap: str
) -> None:
    shop.django(WRITER.format(tag="seed", n=20))
    events = Events(kafka_bootstrap, shop.topics())
    shop.start_relay(kafka_bootstrap)
    deadline = time.monotonic() + 60
    while shop.offset() is None:
        assert time.monotonic() < deadline, shop.relay_log()[-3000:]
        time.sleep(0.1)
    snapshot_at = shop.offset()
    assert snapshot_at is not None
    writers = [shop.django(WRITER.format(tag=f"w{n}", n=250), wait=False) for n in range(2)]
    rng = random.Random(7)
    kills = 0
    while any(w.poll() is None for w in writers) or kills < 4:
        time.sleep(rng.uniform(0.5, 2.0))
        shop.kill_relay(signal.SIGKILL)
        kills += 1
        shop.start_relay(kafka_bootstrap)
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    final = shop.position()
    deadline = time.monotonic() + 120
    while shop.offset() != final:
        assert time.monotonic() < deadline, shop.relay_log()[-3000:]
        time.sleep(0.2)
    expected = set(range(snapshot_at + 1, final + 1))
    events.poll_until(lambda e: e.lsns() >= expected, what=f"changes {snapshot_at + 1}..{final}")

    changes = events.changes()
    assert events.lsns() == expected
    assert len(expected) > 1000 and kills >= 4
    by_lsn: dict[int, dict[str, Any]] = {}
    for change in changes:
        if change["op"] == "r":
            continue
        lsn = int(change["source"]["lsn"])
        seen = by_lsn.setdefault(lsn, change)
        assert (seen["op"], seen["before"], seen["after"], seen["source"]["txId"]) == (
            change["op"], change["before"], change["after"], change["source"]["txId"]
        ), f"duplicate of {lsn} differs"
    first_seen = list(dict.fromkeys(int(c["source"]["lsn"]) for c in changes if c["op"] != "r"))
    assert first_seen == sorted(first_seen), "changes arrived out of changelog order"
    rows = {r[0]: r[1] for r in shop.sql("SELECT id, description FROM catalog_category")}
    replayed = replay(changes, "catalog_category")
    assert {k: v["description"] for k, v in replayed.items()} == rows
    events.close()
