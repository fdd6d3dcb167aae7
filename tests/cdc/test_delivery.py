from __future__ import annotations

from cdc.delivery import AckTracker


def test_ack_only_after_every_record_of_the_transaction_is_confirmed() -> None:
    t: AckTracker[int] = AckTracker()
    tx = t.begin()
    tx.sent()
    tx.sent()
    t.commit(tx, 100)
    tx.delivered()
    assert t.ready() is None
    tx.delivered()
    assert t.ready() == 100
    assert t.ready() is None


def test_later_transaction_waits_for_earlier_one() -> None:
    t: AckTracker[int] = AckTracker()
    a, b = t.begin(), t.begin()
    a.sent()
    b.sent()
    t.commit(a, 1)
    t.commit(b, 2)
    b.delivered()
    assert t.ready() is None
    assert t.in_flight == 2 and t.pending_records == 1
    a.delivered()
    assert t.ready() == 2


def test_open_transaction_is_never_acked_and_empty_commit_is() -> None:
    t: AckTracker[int] = AckTracker()
    tx = t.begin()
    assert t.ready() is None
    t.commit(tx, 7)
    assert t.ready() == 7
