"""A sink writing into a captured SQLite database: its rows are not relayed back (no
ping-pong), the target's AUTOINCREMENT counter stays where it was (ids stay disjoint),
and the database's own writers keep being captured and numbered as before."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cdc.events import Connector
from cdc.offsets import MemoryOffsetStore
from cdc.sinks.mapping import sink_mapping
from cdc.sinks.origin import SqliteSinkOrigin
from cdc.sinks.planner import Delete, Upsert
from cdc.sinks.position import Position
from cdc.sinks.reverse import monolith_engine
from cdc.sinks.sqlalchemy_applier import Consumed, SqlAlchemyApplier
from cdc.sources.sqlite import txids
from cdc.sources.sqlite.relay import Relay
from tests.cdc_sqlite.fakes import FakePublisher
from tests.cdc_sqlite.schema import changelog, connect, create

BASE = 1_000_000_000


def _applier(path: Path, *, hooks: bool) -> SqlAlchemyApplier:
    engine = monolith_engine(f"sqlite:///{path}")
    metadata = sa.MetaData()
    metadata.reflect(engine, only=["shop_note", "shop_product"])
    applier = SqlAlchemyApplier(
        engine, sink_mapping({"note": "shop_note", "product": "shop_product"}), metadata,
        sink="back", hooks=SqliteSinkOrigin(["shop_note", "shop_product"]) if hooks else None)
    applier.create_tables()
    return applier


def _relay(db: sqlite3.Connection, publisher: FakePublisher) -> Relay:
    offsets = MemoryOffsetStore()
    offsets.save("n", {"changelog_id": 0})
    return Relay(db, Connector("sqlite", name="shop", db="shop"), publisher, offsets, name="n")


def _product(pid: int, name: str) -> dict[str, object]:
    return {"id": pid, "name": name, "price": 1.5, "active": True,
            "created_at": dt.datetime(2026, 1, 1), "picture": None, "attrs": None}


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    create(tmp_path / "shop.sqlite3")
    return connect(tmp_path / "shop.sqlite3")


def test_sink_writes_are_not_relayed_and_leave_the_id_counter(
        db: sqlite3.Connection, tmp_path: Path) -> None:
    with txids.capture_transaction(db):
        db.execute("INSERT INTO shop_product (name, price, active, created_at)"
                   " VALUES ('own', 2, 1, '2026-01-01 00:00:00')")
    before_txid = txids.current(db)
    applier = _applier(tmp_path / "shop.sqlite3", hooks=True)
    applier.apply([Upsert("shop_product", (BASE,), _product(BASE, "theirs"), Position(5, 5)),
                   Upsert("shop_note", (BASE + 1,), {"id": BASE + 1, "body": "n"},
                          Position(6, 6))],
                  [Consumed("t", 0, 0, Position(6, 6))])
    applier.apply([Delete("shop_note", (BASE + 1,), Position(7, 7))],
                  [Consumed("t", 0, 1, Position(7, 7))])

    # the rows are there, the changes were logged but stamped as the sink's
    assert db.execute("SELECT name FROM shop_product WHERE id = ?", (BASE,)).fetchone() == (
        "theirs",)
    assert [row[1] for row in changelog(db)] == [1, -1, -1, -1]
    assert txids.current(db) == before_txid
    seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'shop_product'").fetchone()
    assert seq == (1,)

    publisher = FakePublisher()
    relay = _relay(db, publisher)
    assert relay.step() == 4  # all four rows read (offset moves past the sink's) ...
    assert [c["after"]["name"] for c in publisher.changes()] == ["own"]  # ... one published
    assert changelog(db) == []

    # the database's own next write (ids from the counter, as monolith.notifications.ids
    # takes them): a fresh txid, an id in its own range, captured
    with txids.capture_transaction(db) as tx:
        ((own_id,),) = db.execute("UPDATE sqlite_sequence SET seq = seq + 1"
                                  " WHERE name = 'shop_product' RETURNING seq").fetchall()
        db.execute("INSERT INTO shop_product (id, name, price, active, created_at)"
                   " VALUES (?, 'own2', 2, 1, '2026-01-01 00:00:00')", (own_id,))
    assert (tx, own_id) == (before_txid + 1, 2)
    relay.step()
    assert publisher.changes()[-1]["after"]["name"] == "own2"
    applier.engine.dispose()


def test_without_the_origin_hooks_the_sink_write_would_echo(
        db: sqlite3.Connection, tmp_path: Path) -> None:
    """The control: the same write without hooks is relayed and drags the counter."""
    applier = _applier(tmp_path / "shop.sqlite3", hooks=False)
    applier.apply([Upsert("shop_product", (BASE,), _product(BASE, "theirs"), Position(5, 5))],
                  [Consumed("t", 0, 0, Position(5, 5))])
    publisher = FakePublisher()
    _relay(db, publisher).step()
    assert [c["after"]["id"] for c in publisher.changes()] == [BASE]
    assert db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'shop_product'"
                      ).fetchone() == (BASE,)
    applier.engine.dispose()


def test_a_failed_batch_leaves_txid_and_counter_untouched(
        db: sqlite3.Connection, tmp_path: Path) -> None:
    from cdc.sinks.sqlalchemy_applier import ApplyError

    before = txids.current(db)
    applier = _applier(tmp_path / "shop.sqlite3", hooks=True)
    bad = dict(_product(BASE, "x"), name=None)  # NOT NULL
    with pytest.raises(ApplyError):
        applier.apply([Upsert("shop_product", (BASE,), bad, Position(1, 1))],
                      [Consumed("t", 0, 0, Position(1, 1))])
    assert txids.current(db) == before and changelog(db) == []
    assert db.execute("SELECT count(*) FROM sqlite_sequence WHERE name = 'shop_product'"
                      ).fetchone() == (0,)
    applier.engine.dispose()


@pytest.mark.postgres
def test_postgres_sessions_take_distinct_origins_or_refuse_clearly(postgres: Any) -> None:
    import uuid

    from cdc.sinks.origin import OriginUnavailable, tag_postgres_sessions
    from cdc.sinks.sqlalchemy_applier import engine_url

    url = postgres.create_database(f"o_{uuid.uuid4().hex[:8]}")
    engine = sa.create_engine(engine_url(url))
    tag_postgres_sessions(engine, "probe")
    tag_postgres_sessions(engine, "probe")  # once per engine, however often asked
    query = sa.text("SELECT external_id FROM pg_replication_origin_status"
                    " JOIN pg_replication_origin ON roident = local_id")
    with engine.connect() as one, engine.connect() as two:
        names = {one.execute(sa.text("SELECT pg_replication_origin_session_is_setup()"))
                 .scalar_one(), two.execute(sa.text(
                     "SELECT pg_replication_origin_session_is_setup()")).scalar_one()}
        assert names == {True}
        active = set(one.execute(query).scalars())
        assert {"strangler_sink:probe:0", "strangler_sink:probe:1"} <= active
    engine.dispose()

    role = f"nosuper_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(engine_url(url))
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN"))
    limited = sa.create_engine(engine_url(url.replace(f"//{postgres.user}@", f"//{role}@")))
    tag_postgres_sessions(limited, "probe")
    with pytest.raises(OriginUnavailable, match="needs superuser or EXECUTE"):
        limited.connect()
    limited.dispose()
    admin.dispose()
