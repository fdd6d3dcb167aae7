from __future__ import annotations

from strangler_proxy.forwarding.breaker import Breaker


def test_opens_after_threshold_consecutive_failures() -> None:
    b = Breaker(threshold=3, cooldown_s=10)
    for t in range(2):
        b.failure(now=t)
        assert b.state == "closed" and b.allow(now=t)
    b.failure(now=2)
    assert b.state == "open" and b.opens == 1
    assert not b.allow(now=5)


def test_success_resets_the_consecutive_count() -> None:
    b = Breaker(threshold=2, cooldown_s=10)
    b.failure(now=0)
    b.success()
    b.failure(now=1)
    assert b.state == "closed"


def test_half_open_lets_exactly_one_probe_through() -> None:
    b = Breaker(threshold=1, cooldown_s=10)
    b.failure(now=0)
    assert not b.allow(now=9.9)
    assert b.allow(now=10) and b.state == "half_open"
    assert not b.allow(now=10.1)


def test_successful_probe_closes() -> None:
    b = Breaker(threshold=1, cooldown_s=10)
    b.failure(now=0)
    assert b.allow(now=11)
    b.success()
    assert b.state == "closed" and b.allow(now=11) and b.allow(now=11)


def test_failed_probe_reopens_for_a_new_cooldown() -> None:
    b = Breaker(threshold=5, cooldown_s=10)
    for _ in range(5):
        b.failure(now=0)
    assert b.allow(now=10)
    b.failure(now=10)
    assert b.state == "open" and b.opens == 2
    assert not b.allow(now=19) and b.allow(now=20)


def test_released_probe_can_be_claimed_again() -> None:
    b = Breaker(threshold=1, cooldown_s=1)
    b.failure(now=0)
    assert b.allow(now=1)
    b.release()
    assert b.allow(now=1)
