from __future__ import annotations

import pytest

from cdc.errors import DecodeError
from cdc.events import Op
from cdc.positions import SourcePosition
from cdc.sources.postgres.capture import ChangeAssembler, TableFacts
from cdc.sources.postgres.decode import decode
from cdc.types import UNAVAILABLE_VALUE
from tests.cdc.sources import pgoutput_bytes as w

TS = 1_700_000_000_000_000
COLS = [(True, "id", 23, -1), (False, "name", 25, -1), (False, "note", 25, -1)]
FACTS = TableFacts(key=("id",), not_null=frozenset({"id", "name"}))


def assembler() -> ChangeAssembler:
    a = ChangeAssembler(lambda relid, nsp, name: FACTS)
    a.feed(decode(w.relation(7, "public", "items", "d", COLS)), 0)
    a.feed(decode(w.begin(500, TS, 9)), 10)
    return a


def test_insert_becomes_create_with_commit_position() -> None:
    a = assembler()
    [ch] = a.feed(decode(w.insert(7, "1", "a", None)), 20)
    assert ch.op is Op.CREATE
    assert ch.after == {"id": 1, "name": "a", "note": None}
    assert ch.position == SourcePosition(500, 20)
    assert (ch.tx_id, ch.ts_us, ch.lsn) == (9, TS, 20)
    assert [c.optional for c in ch.table.columns] == [False, False, True]
    a.feed(decode(w.commit(500, 548, TS)), 30)
    assert a.committed is not None and a.committed.end_lsn == 548 and a.begin is None


def test_default_identity_update_has_no_before() -> None:
    [ch] = assembler().feed(decode(w.update(7, ("1", "b", None))), 20)
    assert ch.op is Op.UPDATE and ch.before is None and ch.after == {
        "id": 1, "name": "b", "note": None}


def test_default_identity_delete_fills_required_columns_like_debezium() -> None:
    [ch] = assembler().feed(decode(w.delete(7, ("1", None, None), b"K")), 20)
    assert ch.op is Op.DELETE
    assert ch.before == {"id": 1, "name": "", "note": None}


def test_full_identity_update_and_unchanged_toast() -> None:
    [ch] = assembler().feed(decode(w.update(7, ("1", "b", b"u"), old=("1", "a", "big"))), 20)
    assert ch.before == {"id": 1, "name": "a", "note": "big"}
    assert ch.after == {"id": 1, "name": "b", "note": "big"}
    [ch] = assembler().feed(decode(w.update(7, ("1", "b", b"u"))), 20)
    assert ch.after == {"id": 1, "name": "b", "note": UNAVAILABLE_VALUE}


def test_key_change_under_default_identity_carries_old_key() -> None:
    [ch] = assembler().feed(decode(w.update(7, ("2", "b", None), old=("1", None, None),
                                            kind=b"K")), 20)
    assert ch.before == {"id": 1, "name": "", "note": None}
    assert ch.after == {"id": 2, "name": "b", "note": None}


def test_truncate_yields_one_change_per_table() -> None:
    a = assembler()
    a.feed(decode(w.relation(8, "public", "other", "d", COLS)), 0)
    changes = a.feed(decode(w.truncate([7, 8])), 20)
    assert [(c.op, c.table.name) for c in changes] == [(Op.TRUNCATE, "items"),
                                                       (Op.TRUNCATE, "other")]


def test_uncaptured_relation_is_ignored_and_unknown_relation_is_an_error() -> None:
    a = ChangeAssembler(lambda *_: FACTS, captured=frozenset({"public.items"}))
    a.feed(decode(w.relation(9, "public", "secret", "d", COLS)), 0)
    a.feed(decode(w.begin(500, TS, 9)), 10)
    assert a.feed(decode(w.insert(9, "1", "a", None)), 20) == ()
    with pytest.raises(DecodeError, match="before its Relation"):
        a.feed(decode(w.insert(77, "1")), 20)
