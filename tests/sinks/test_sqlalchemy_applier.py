"""The applier against real databases: SQLite files and the session PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cdc.sinks.mapping import sink_mapping
from cdc.sinks.planner import PlannedWrite, Skip, plan_event
from cdc.sinks.position import Position
from cdc.sinks.sqlalchemy_applier import (
    ApplyError,
    Consumed,
    SqlAlchemyApplier,
    engine_url,
    latest_position,
)
from tests.sinks.debezium_fixtures import load, raw

TOPIC = "PostgreSQL_server.public.customers"


def _metadata() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "customer", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("email", sa.String(200), nullable=False, unique=True),
        sa.Column("balance", sa.Numeric(12, 2), nullable=True),
        sa.Column("seen_at", sa.DateTime, nullable=True),
    )
    return md


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'svc.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_database")
    eng = sa.create_engine(engine_url(url))
    yield eng
    eng.dispose()


@pytest.fixture
def applier(engine: sa.Engine) -> SqlAlchemyApplier:
    md = _metadata()
    md.create_all(engine)
    a = SqlAlchemyApplier(engine, sink_mapping({"customers": "customer"}), md, sink="test")
    a.create_tables()
    return a


def _rows(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(
            "SELECT id, first_name, email FROM customer ORDER BY id")).mappings()]


def _event(op: str, row: dict[str, Any] | None, lsn: int, before: Any = None) -> dict[str, Any]:
    return {"op": op, "before": before, "after": row,
            "source": {"schema": "public", "table": "customers", "lsn": lsn, "ts_ms": 1000 + lsn}}


def _person(i: int, name: str = "n") -> dict[str, Any]:
    return {"id": i, "first_name": name, "last_name": "x", "email": f"p{i}@example.com",
            "balance": None, "seen_at": None}


def _apply(applier: SqlAlchemyApplier, events: list[Any], start: int = 0) -> Any:
    writes: list[PlannedWrite] = []
    consumed = []
    for offset, (value, key) in enumerate(events, start=start):
        write = plan_event(applier.mapping, value, key=key, topic=TOPIC)
        if not isinstance(write, Skip):
            writes.append(write)
        position = getattr(write, "position", None)
        consumed.append(Consumed(TOPIC, 0, offset, position, getattr(write, "source_ts_ms", None)))
    return applier.apply(writes, consumed)


def test_documented_events_applied_in_order(applier: SqlAlchemyApplier,
                                             engine: sa.Engine) -> None:
    _apply(applier, [(raw("pg-create.value.json"), None)])
    assert _rows(engine) == [{"id": 1, "first_name": "Anne", "email": "annek@noanswer.org"}]
    _apply(applier, [(raw("pg-update.value.json"), None)], start=1)
    assert _rows(engine)[0]["first_name"] == "Anne Marie"
    _apply(applier, [(raw("pg-delete.value.json"), None),
                     (None, json.dumps({"id": 1}))], start=2)
    assert _rows(engine) == []
    [state] = applier.offsets()
    assert state.next_offset == 4
    assert state.position == Position(46523128, 46523128)
    assert state.source_ts_ms == 1559033904863


def test_replayed_batch_changes_nothing(applier: SqlAlchemyApplier, engine: sa.Engine) -> None:
    batch = [(_event("c", _person(1, "a"), 10), None), (_event("u", _person(1, "b"), 11), None),
             (_event("c", _person(2, "c"), 12), None)]
    first = _apply(applier, batch)
    assert (first.applied, first.skipped) == (2, 1)  # the older write of row 1 is collapsed
    again = _apply(applier, batch)
    assert (again.applied, again.skipped) == (0, 3)
    assert [r["first_name"] for r in _rows(engine)] == ["b", "c"]


def test_older_event_never_overwrites_newer(applier: SqlAlchemyApplier,
                                            engine: sa.Engine) -> None:
    _apply(applier, [(_event("u", _person(1, "new"), 20), None)])
    result = _apply(applier, [(_event("u", _person(1, "old"), 19), None)])
    assert result.skipped == 1
    assert _rows(engine)[0]["first_name"] == "new"
    # a delete is remembered: a replayed older create does not resurrect the row
    _apply(applier, [(_event("d", None, 21, before={"id": 1}), None)])
    _apply(applier, [(_event("c", _person(1, "zombie"), 15), None)])
    assert _rows(engine) == []
    # a newer create for the same key (a re-insert) does apply
    _apply(applier, [(_event("c", _person(1, "reborn"), 22), None)])
    assert _rows(engine)[0]["first_name"] == "reborn"


def test_snapshot_reads_upsert_and_truncate_is_not_replayed(applier: SqlAlchemyApplier,
                                                            engine: sa.Engine) -> None:
    _apply(applier, [(_event("r", _person(i), 5), None) for i in range(1, 4)])
    assert len(_rows(engine)) == 3
    truncate = {"op": "t", "source": {"schema": "public", "table": "customers", "lsn": 6}}
    _apply(applier, [(truncate, None), (_event("c", _person(9), 7), None)])
    assert [r["id"] for r in _rows(engine)] == [9]
    _apply(applier, [(truncate, None)])  # redelivered: row 9 already reflects a later change
    assert [r["id"] for r in _rows(engine)] == [9]


def test_constraint_violation_rolls_back_rows_and_offsets(applier: SqlAlchemyApplier,
                                                          engine: sa.Engine) -> None:
    _apply(applier, [(_event("c", _person(1), 1), None)])
    clash = {**_person(2), "email": "p1@example.com"}  # unique email taken
    with pytest.raises(ApplyError) as caught:
        _apply(applier, [(_event("c", _person(3), 2), None), (_event("c", clash, 3), None)],
               start=1)
    assert caught.value.kind == "constraint"
    assert [r["id"] for r in _rows(engine)] == [1]  # row 3 was rolled back with the batch
    [state] = applier.offsets()
    assert state.next_offset == 1 and state.position == Position(1, 1)


def test_types_round_trip(applier: SqlAlchemyApplier, engine: sa.Engine) -> None:
    row = {**_person(1), "balance": "12.50", "seen_at": "2024-05-01T12:30:00.123456Z"}
    _apply(applier, [(_event("c", row, 1), None)])
    with engine.connect() as conn:
        balance, seen = conn.execute(sa.text("SELECT balance, seen_at FROM customer")).one()
    assert Decimal(str(balance)) == Decimal("12.50")
    seen = seen if isinstance(seen, dt.datetime) else dt.datetime.fromisoformat(seen)
    assert seen == dt.datetime(2024, 5, 1, 12, 30, 0, 123456)
    assert latest_position(applier.offsets()) == Position(1, 1)


def test_documented_create_with_schema_applies_on_both(applier: SqlAlchemyApplier) -> None:
    event = load("pg-create.value.json")
    event["payload"]["op"] = "r"
    result = _apply(applier, [(event, None)])
    assert result.applied == 1


def test_restart_offsets_rereads_topics_but_keeps_positions(applier: SqlAlchemyApplier,
                                                            engine: sa.Engine) -> None:
    _apply(applier, [(_event("c", _person(1, "a"), 10), None)], start=41)
    applier.restart_offsets()  # a fresh memory-only broker: offsets restart at 0
    [state] = applier.offsets()
    assert state.next_offset == 0 and state.position == Position(10, 10)
    replay = _apply(applier, [(_event("c", _person(1, "old"), 9), None)], start=0)
    assert replay.skipped == 1 and _rows(engine)[0]["first_name"] == "a"


def test_one_batch_mixes_stale_duplicate_fresh_and_tombstone(applier: SqlAlchemyApplier,
                                                             engine: sa.Engine) -> None:
    """The position check per row inside one batch (on PostgreSQL it runs in the upsert)."""
    _apply(applier, [(_event("c", _person(i, "v1"), 10 + i), None) for i in (1, 2, 3, 4)])
    result = _apply(applier, [
        (_event("u", _person(1, "stale"), 5), None),     # older than stored: skipped
        (_event("u", _person(2, "v2"), 30), None),       # newer: applied
        (None, json.dumps({"id": 3})),                   # tombstone: always applied
        (_event("u", _person(4, "dup"), 14), None),      # same position: a redelivery
        (_event("c", _person(5, "new"), 31), None),      # unknown row: applied
    ], start=4)
    assert (result.applied, result.skipped) == (3, 2)
    assert [(r["id"], r["first_name"]) for r in _rows(engine)] == [
        (1, "v1"), (2, "v2"), (4, "v1"), (5, "new")]
    with engine.connect() as conn:
        stored = {key: change for key, change in conn.execute(sa.text(
            "SELECT row_key, position_change FROM strangler_sink_rows"))}
    assert stored == {"1": 11, "2": 30, "3": 13, "4": 14, "5": 31}
    # a batch of tombstones only carries no position: the stored one stays
    _apply(applier, [(None, json.dumps({"id": 5}))], start=9)
    [state] = applier.offsets()
    assert state.next_offset == 10 and state.position == Position(31, 31)
    assert state.source_ts_ms == 1031


def _odd_metadata() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "odd", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("label", sa.String(100), nullable=True),
        sa.Column("body", sa.Text, nullable=True),
        sa.Column("amount", sa.Numeric(12, 2), nullable=True),
        sa.Column("ratio", sa.Float, nullable=True),
        sa.Column("flag", sa.Boolean, nullable=True),
        sa.Column("day", sa.Date, nullable=True),
        sa.Column("at", sa.DateTime, nullable=True),
        sa.Column("doc", sa.JSON, nullable=True),
    )
    return md


ODD_TEXT = ['a "quoted" word', "back\\slash \\\"mix\\\\", "{braces},commas", "NULL", "",
            "  spaced  ", "ünïcødé ✓", "new\nline\ttab", None]
# no NULL, quote or backslash: the text columns take the join-all-at-once path
PLAIN_TEXT = ["{braces},commas", "NULL", "", "  spaced  ", "ünïcødé ✓", "new\nline\ttab"]


@pytest.mark.parametrize("texts", [ODD_TEXT, PLAIN_TEXT], ids=["mixed", "plain"])
def test_awkward_values_round_trip(engine: sa.Engine, texts: list[str | None]) -> None:
    """On PostgreSQL rows travel as one array literal per column: quotes, backslashes,
    braces, commas, the text 'NULL', empty strings and real NULLs must all arrive as sent."""
    md = _odd_metadata()
    md.create_all(engine)
    applier = SqlAlchemyApplier(engine, sink_mapping({"odd": "odd"}), md, sink="test")
    applier.create_tables()
    rows = [{"id": i + 1, "label": text, "body": text, "amount": str(Decimal(i) / 4),
             "ratio": [1.5, None, -2e-300][i % 3], "flag": [True, False, None][i % 3],
             "day": 19_000 + i, "at": 1_700_000_000_000_000 + i,
             "doc": json.dumps({"k": text})}
            for i, text in enumerate(texts)]
    events = [({"op": "c", "before": None, "after": row,
                "source": {"schema": "public", "table": "odd", "lsn": 10 + i}}, None)
              for i, row in enumerate(rows)]
    writes = [plan_event(applier.mapping, value) for value, _key in events]
    assert not any(isinstance(w, Skip) for w in writes)
    result = applier.apply([w for w in writes if not isinstance(w, Skip)],
                           [Consumed("t", 0, i) for i in range(len(rows))])
    assert result.applied == len(rows)
    with engine.connect() as conn:
        stored = {r["id"]: r for r in conn.execute(sa.select(md.tables["odd"])).mappings()}
    for i, text in enumerate(texts):
        got = stored[i + 1]
        assert (got["label"], got["body"]) == (text, text)
        assert got["amount"] == Decimal(i) / 4
        assert got["ratio"] == [1.5, None, -2e-300][i % 3]
        assert got["flag"] == [True, False, None][i % 3]
        assert got["day"] == dt.date(1970, 1, 1) + dt.timedelta(days=19_000 + i)
        assert got["at"] == dt.datetime(2023, 11, 14, 22, 13, 20, i)
        assert got["doc"] == {"k": text}


def test_pg_array_literal_quotes_text_and_falls_back_for_other_types() -> None:
    from cdc.sinks.sqlalchemy_applier import pg_array_literal

    assert pg_array_literal([1, None, 3]) == "{1,NULL,3}"
    assert pg_array_literal([1, 2]) == "{1,2}" and pg_array_literal([]) == "{}"
    assert pg_array_literal(["a", "", "NULL", "{x,y}"]) == '{"a","","NULL","{x,y}"}'
    assert pg_array_literal(["a", 'b"c']) == '{"a","b\\"c"}'
    assert pg_array_literal(['say "hi"', "a\\b", "NULL", ""]) == (
        '{"say \\"hi\\"","a\\\\b","NULL",""}')
    assert pg_array_literal([True, False]) == "{t,f}"
    assert pg_array_literal([dt.datetime(2024, 3, 1, 12, 0, 0, 5)]) == (
        '{"2024-03-01 12:00:00.000005"}')
    aware = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    assert pg_array_literal([None, aware]) == [None, aware]  # psycopg2 adapts it, zone kept
    assert pg_array_literal([b"\x00"]) == [b"\x00"]
