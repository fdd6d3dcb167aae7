import pytest

from strangler_proxy.shadow.lag import (
    EXPECTED_POSITION_TAG,
    NOT_RECHECKED,
    RECHECKED_BEHIND,
    RECHECKED_CURRENT,
    LagVerdict,
    RecheckStep,
    SourcePosition,
    classify_lag,
    is_rechecked,
    recheck_step,
    wants_recheck,
)


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


def test_recheck_verdicts_override_positions() -> None:
    # The re-check's verdict wins over whatever the headers say.
    assert classify_lag("seq:10", "seq:11", expected=RECHECKED_BEHIND) is LagVerdict.BEHIND
    assert classify_lag("seq:10", "seq:9", expected=RECHECKED_CURRENT) is LagVerdict.CURRENT
    # "no re-check" falls back to the positions.
    assert classify_lag("seq:10", "seq:9", expected=NOT_RECHECKED) is LagVerdict.BEHIND
    assert classify_lag("seq:10", "seq:10", expected=NOT_RECHECKED) is LagVerdict.CURRENT


def test_monolith_and_service_positions_of_one_changelog_compare() -> None:
    # The monolith reports its changelog id N as seq:N.N, the service the position
    # of the last event it applied, Position(N, N).header_value(): the same order.
    from cdc.sinks.position import Position

    assert classify_lag("seq:12.12", Position(11, 11).header_value()) is LagVerdict.BEHIND
    assert classify_lag("seq:12.12", Position(12, 12).header_value()) is LagVerdict.CURRENT
    assert classify_lag("seq:12.12", Position(13, 13).header_value()) is LagVerdict.CURRENT


def test_is_rechecked() -> None:
    assert not is_rechecked(())
    assert not is_rechecked(((EXPECTED_POSITION_TAG, "seq:4"),))
    for verdict in (RECHECKED_BEHIND, RECHECKED_CURRENT, NOT_RECHECKED):
        assert is_rechecked((("other", "x"), (EXPECTED_POSITION_TAG, verdict)))


@pytest.mark.parametrize(
    ("method", "verdict", "candidate", "wanted"),
    [
        ("GET", LagVerdict.BEHIND, "seq:3", True),
        ("HEAD", LagVerdict.BEHIND, "seq:3", True),
        ("GET", LagVerdict.CURRENT, "seq:3", False),  # caught up: a real difference
        ("GET", LagVerdict.UNKNOWN, "lsn:0/16B3748", True),  # CDC-fed, no monolith position
        ("GET", LagVerdict.UNKNOWN, None, False),  # not CDC-fed: nothing to wait for
        ("GET", LagVerdict.UNKNOWN, "garbage", False),
        ("POST", LagVerdict.BEHIND, "seq:3", False),  # writes cannot be asked again
        ("PATCH", LagVerdict.UNKNOWN, "seq:3", False),
    ],
)
def test_wants_recheck(method: str, verdict: LagVerdict, candidate: str | None,
                       wanted: bool) -> None:
    assert wants_recheck(method, verdict, candidate) is wanted


@pytest.mark.parametrize(
    ("differs", "verdict", "time_left", "step"),
    [
        (False, LagVerdict.CURRENT, True, RecheckStep.LAG),
        (False, LagVerdict.BEHIND, False, RecheckStep.LAG),  # agree even though behind
        (False, LagVerdict.UNKNOWN, True, RecheckStep.LAG),
        (True, LagVerdict.CURRENT, True, RecheckStep.MISMATCH),  # caught up, still differs
        (True, LagVerdict.CURRENT, False, RecheckStep.MISMATCH),
        (True, LagVerdict.BEHIND, True, RecheckStep.RETRY),
        (True, LagVerdict.UNKNOWN, True, RecheckStep.RETRY),
        (True, LagVerdict.BEHIND, False, RecheckStep.UNRESOLVED),
        (True, LagVerdict.UNKNOWN, False, RecheckStep.UNRESOLVED),
        (None, LagVerdict.CURRENT, True, RecheckStep.RETRY),  # a side failed
        (None, LagVerdict.UNKNOWN, False, RecheckStep.UNRESOLVED),
    ],
)
def test_recheck_step(differs: bool | None, verdict: LagVerdict, time_left: bool,
                      step: RecheckStep) -> None:
    assert recheck_step(differs, verdict, time_left) is step
