from __future__ import annotations

import pytest

from cdc.positions import SourcePosition, format_lsn, parse_lsn


def test_lsn_round_trip() -> None:
    assert parse_lsn("16/B374D848") == 0x16B374D848
    assert format_lsn(0x16B374D848) == "16/B374D848"
    assert format_lsn(parse_lsn("0/0")) == "0/0"


@pytest.mark.parametrize("bad", ["", "16B374D848", "x/1", "1/100000000"])
def test_bad_lsn_is_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="LSN"):
        parse_lsn(bad)


def test_positions_order_by_commit_then_event() -> None:
    a = SourcePosition(100, 500)
    b = SourcePosition(200, 150)
    assert a < b
    assert SourcePosition(200, 150) < SourcePosition(200, 151)


def test_sequence_is_debeziums_json_pair_of_strings() -> None:
    pos = SourcePosition(24023119, 24023128)
    assert pos.sequence() == '["24023119","24023128"]'
    assert SourcePosition.from_sequence(pos.sequence()) == pos
    with pytest.raises(ValueError):
        SourcePosition.from_sequence("nope")
