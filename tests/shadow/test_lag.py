import pytest

from strangler_proxy.shadow.lag import LagVerdict, SourcePosition, classify_lag


def test_lsn_positions_compare_numerically() -> None:
    a = SourcePosition.parse("lsn:0/16B3748")
    b = SourcePosition.parse("0/16B3750")
    c = SourcePosition.parse("1/0")
    assert a is not None and b is not None and c is not None
    assert a < b < c
    assert str(a) == "lsn:0/16B3748"


def test_sequence_positions() -> None:
    assert SourcePosition.parse("seq:9") < SourcePosition.parse("10")  # type: ignore[operator]
    assert SourcePosition.parse("kafka:1.200") == SourcePosition("kafka", (1, 200))


@pytest.mark.parametrize("text", [None, "", "lsn:zz", "seq:abc", "0/G"])
def test_unparseable_positions(text: str | None) -> None:
    assert SourcePosition.parse(text) is None


def test_classify() -> None:
    assert classify_lag("seq:10", "seq:9") is LagVerdict.BEHIND
    assert classify_lag("seq:10", "seq:10") is LagVerdict.CURRENT
    assert classify_lag("seq:10", "seq:11") is LagVerdict.CURRENT
    assert classify_lag(None, "seq:9", expected="seq:12") is LagVerdict.BEHIND
    assert classify_lag("seq:10", None) is LagVerdict.UNKNOWN
    assert classify_lag("lsn:0/1", "seq:1") is LagVerdict.UNKNOWN
