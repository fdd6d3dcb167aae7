"""The hot path (tuple bytes → JSON fragments → template) writes byte for byte what the
general path (decode → row dict → Change → records_for → JsonConverter) writes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdc.converter import JsonConverter
from cdc.events import Change, Connector, Op, records_for
from cdc.positions import SourcePosition
from cdc.sources.postgres.decode import Insert, Update, decode
from cdc.sources.postgres.tables import PgColumn, TableCodec, build_codec
from tests.cdc.sources import pgoutput_bytes as w

NOW_NS = 1_700_000_001_000_000_007
TS_US = 1_700_000_000_123_456


def _numeric_text(precision: int, scale: int) -> st.SearchStrategy[str]:
    limit = 10 ** (precision - scale) - 1
    return st.tuples(st.integers(-limit, limit), st.integers(0, 10**scale - 1), st.booleans()).map(
        lambda t: ("-" if t[2] and (t[0] or t[1]) and t[0] >= 0 else "")
        + str(t[0]) + ("." + str(t[1]).zfill(scale) if scale else "")
    )


def _timestamptz_text(moment: datetime) -> str:
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + "+00"


_MOMENTS = st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)
_TEXT = (
    st.text(st.characters(min_codepoint=1, max_codepoint=0x7F))
    | st.text(st.sampled_from('ab "\\/\x7f\x1f\n%é'))
    | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
)

# (type oid, typmod, PostgreSQL's text output for it)
COLUMN_KINDS: list[tuple[int, int, st.SearchStrategy[str]]] = [
    (23, -1, st.integers(-(2**31), 2**31 - 1).map(str)),
    (20, -1, st.integers(-(2**63), 2**63 - 1).map(str)),
    (21, -1, st.integers(-(2**15), 2**15 - 1).map(str)),
    (25, -1, _TEXT),
    (1043, 24, st.text(max_size=20).filter(lambda s: "\x00" not in s)),
    (16, -1, st.sampled_from(["t", "f"])),
    (1700, ((10 << 16) | 2) + 4, _numeric_text(10, 2)),
    (1700, ((5 << 16) | 0) + 4, _numeric_text(5, 0)),
    (1700, ((18 << 16) | 6) + 4, _numeric_text(18, 6) | st.just("12.5")),
    (1700, -1, st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str)),
    (1184, -1, _MOMENTS.map(_timestamptz_text)),
    (1184, 3 , _MOMENTS.map(_timestamptz_text)),
    (1184, 0, _MOMENTS.map(_timestamptz_text) | st.just("2024-01-01 10:00:00+02")),
    (1114, -1, st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1)).map(
        lambda d: d.isoformat(sep=" "))),
    (1082, -1, st.dates(date(1, 1, 1), date(9999, 12, 31)).map(date.isoformat)),
    (701, -1, st.floats(allow_nan=False).map(repr).map(
        lambda r: {"inf": "Infinity", "-inf": "-Infinity"}.get(r, r))),
    (2950, -1, st.uuids().map(str)),
    (3802, -1, st.dictionaries(st.text(max_size=5), st.integers(), max_size=3).map(
        lambda d: "{" + ", ".join(f'"{k}": {v}' for k, v in d.items() if '"' not in k
                                  and "\\" not in k) + "}")),
    (17, -1, st.binary(max_size=12).map(lambda b: "\\x" + b.hex())),
    (1186, -1, st.timedeltas(timedelta(days=-900), timedelta(days=900)).map(
        lambda d: f"{d.days} days {d.seconds // 3600:02d}:{d.seconds // 60 % 60:02d}:"
                  f"{d.seconds % 60:02d}")),
    (1007, -1, st.lists(st.integers(-99, 99).map(str) | st.none(), max_size=4).map(
        lambda xs: "{" + ",".join("NULL" if x is None else x for x in xs) + "}")),
]


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[PgColumn], list[int], list[str | None]]:
    kinds = draw(st.lists(st.sampled_from(range(len(COLUMN_KINDS))), min_size=1, max_size=8))
    columns, values = [], []
    for i, kind in enumerate(kinds):
        oid, typmod, texts = COLUMN_KINDS[kind]
        not_null = i == 0 or draw(st.booleans())
        columns.append(PgColumn(f"c{i}%s\"é"[: 2 + draw(st.integers(0, 4))], oid, typmod,
                                not_null))
        values.append(draw(texts) if not_null or draw(st.booleans()) else None)
    names = {c.name for c in columns}
    if len(names) != len(columns):  # name clash after truncation
        columns = [PgColumn(f"c{i}", c.type_oid, c.typmod, c.not_null)
                   for i, c in enumerate(columns)]
    key_size = draw(st.integers(1, min(2, len(columns))))
    return columns, list(range(key_size)), values


def reference(codec: TableCodec, connector: Connector, conv: JsonConverter, op: Op,
              row: list[Any], lsn: int) -> tuple[bytes | None, bytes | None]:
    change = Change(op, codec.table, None, codec.row(row), SourcePosition(900, lsn),
                    ts_us=TS_US, tx_id=77, lsn=lsn)
    [rec] = records_for(connector, change, now_ns=NOW_NS)
    return conv.serialize(rec)


def fast(codec: TableCodec, connector: Connector, conv: JsonConverter, op: Op,
         buf: bytes, lsn: int) -> tuple[bytes, bytes] | None:
    assert codec.json is not None
    parts = codec.json.read(buf, 6)
    if parts is None:
        return None
    template = conv.change_template(connector, codec.table)
    txn = template.txn(op.value, 900, TS_US, 77)
    return template.key(parts), template.value(txn, parts, lsn, NOW_NS)


@settings(max_examples=400, deadline=None)
@given(tables(), st.booleans(), st.sampled_from([Op.CREATE, Op.UPDATE]),
       st.sampled_from([("sh%op", 'd"b%s'), ("shop", "shop")]))
def test_fast_path_bytes_equal_general_path(
    table: tuple[list[PgColumn], list[int], list[str | None]], schemas: bool, op: Op,
    names: tuple[str, str],
) -> None:
    columns, key, values = table
    codec = build_codec("pub%lic", 'ta"ble', columns, [columns[i].name for i in key])
    connector = Connector("postgresql", name=names[0], db=names[1])
    conv = JsonConverter(schemas_enable=schemas)
    buf = w.insert(5, *values) if op is Op.CREATE else w.update(5, tuple(values))
    msg = decode(buf)
    assert isinstance(msg, Insert | Update)
    got = fast(codec, connector, conv, op, buf, 123_456)
    assert got is not None, values  # every generated value has a fast or generic writer
    assert got == reference(codec, connector, conv, op, msg.new, 123_456)


def _codec() -> TableCodec:
    return build_codec("public", "t", [PgColumn("id", 23, -1, True),
                                       PgColumn("amount", 1700, ((10 << 16) | 2) + 4, False),
                                       PgColumn("note", 25, -1, False)], ["id"])


@pytest.mark.parametrize("buf", [
    w.insert(5, "1", "NaN", "x"),            # poison value: the general path names it
    w.insert(5, "1", "1.00"),                # column count differs from the relation
    w.update(5, ("1", "1.00", b"u")),        # unchanged TOAST value
    w.insert(5, "1", "1.00", "x")[:-2],      # truncated message
    w.insert(5, "1", "1.00", "x") + b"z",    # trailing bytes
])
def test_unusual_tuples_go_the_general_way(buf: bytes) -> None:
    codec = _codec()
    assert codec.json is not None and codec.json.read(buf, 6) is None


def test_decimal_with_unusual_form_falls_back_to_exact_conversion() -> None:
    codec = _codec()
    assert codec.json is not None
    parts = codec.json.read(w.insert(5, "7", "1.5", None), 6)
    assert parts is not None and parts[1:] == (b'"AJY="', b"null")
    assert Decimal(150) == Decimal(int.from_bytes(b"\x00\x96", "big"))
