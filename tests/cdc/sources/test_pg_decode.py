from __future__ import annotations

import struct

import pytest

from cdc.errors import DecodeError
from cdc.sources.postgres.decode import (
    UNCHANGED,
    Begin,
    Commit,
    Delete,
    Insert,
    LogicalMessage,
    Origin,
    Relation,
    RelationColumn,
    Truncate,
    TypeInfo,
    Update,
    decode,
)
from tests.cdc.sources import pgoutput_bytes as w

TS = 1_700_000_000_123_456


def test_begin_and_commit_convert_timestamps_to_unix_epoch() -> None:
    assert decode(w.begin(0x16B374D848, TS, 771)) == Begin(0x16B374D848, TS, 771)
    assert decode(w.commit(100, 148, TS)) == Commit(0, 100, 148, TS)


def test_relation() -> None:
    raw = w.relation(16385, "public", "customers", "d",
                     [(True, "id", 23, -1), (False, "price", 1700, (10 << 16 | 2) + 4)])
    assert decode(raw) == Relation(16385, "public", "customers", "d", (
        RelationColumn("id", 23, -1, True),
        RelationColumn("price", 1700, 655366, False),
    ))


def test_relation_in_pg_catalog_has_empty_namespace() -> None:
    raw = w.relation(1, "", "pg_thing", "n", [])
    msg = decode(raw)
    assert isinstance(msg, Relation) and msg.namespace == "pg_catalog"


def test_insert_with_text_null_and_unicode() -> None:
    assert decode(w.insert(7, "1", None, "Zoë ☕")) == Insert(7, ["1", None, "Zoë ☕"])


def test_update_forms() -> None:
    assert decode(w.update(7, ("1", "b"))) == Update(7, None, None, ["1", "b"])
    assert decode(w.update(7, ("2", b"u"), old=("1", None), kind=b"K")) == Update(
        7, ["1", None], "K", ["2", UNCHANGED])
    assert decode(w.update(7, ("1", "c"), old=("1", "b"), kind=b"O")) == Update(
        7, ["1", "b"], "O", ["1", "c"])


def test_delete_forms() -> None:
    assert decode(w.delete(7, ("1", None), b"K")) == Delete(7, ["1", None], "K")
    assert decode(w.delete(7, ("1", "x"), b"O")) == Delete(7, ["1", "x"], "O")


def test_truncate_options() -> None:
    assert decode(w.truncate([7, 8], options=3)) == Truncate((7, 8), True, True)
    assert decode(w.truncate([7])) == Truncate((7,), False, False)


def test_origin_type_and_message() -> None:
    assert decode(b"O" + struct.pack("!Q", 99) + w.cstr("node_a")) == Origin(99, "node_a")
    assert decode(b"Y" + struct.pack("!I", 5000) + w.cstr("public") + w.cstr("mood")) == TypeInfo(
        5000, "public", "mood")
    raw = b"M" + bytes([1]) + struct.pack("!Q", 42) + w.cstr("foo") + struct.pack("!I", 3) + b"bar"
    assert decode(raw) == LogicalMessage(True, 42, "foo", b"bar")


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"", "empty"),
        (b"Z\x00", "unknown pgoutput message type 'Z'"),
        (b"B\x00\x01", "malformed pgoutput 'B'"),
        (w.insert(7, "1")[:-1], "truncated tuple"),
        (b"I" + struct.pack("!I", 7) + b"X", "Insert without a new tuple"),
        (b"I" + struct.pack("!I", 7) + b"N" + struct.pack("!h", 1) + b"b", "binary"),
        (b"D" + struct.pack("!I", 7) + b"N", "Delete without"),
    ],
)
def test_malformed_messages_raise_decode_error(raw: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        decode(raw)
