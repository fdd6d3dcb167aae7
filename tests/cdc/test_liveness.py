from __future__ import annotations

from cdc.liveness import events_per_second, is_healthy


def test_rate_between_oldest_and_newest_sample() -> None:
    assert events_per_second([]) == 0.0
    assert events_per_second([(1.0, 10)]) == 0.0
    assert events_per_second([(1.0, 10), (2.0, 15), (3.0, 30)]) == 10.0
    assert events_per_second([(2.0, 10), (2.0, 20)]) == 0.0


def test_health_follows_state_and_loop_age() -> None:
    assert is_healthy("streaming", 1.0, 5.0)
    assert not is_healthy("failed", 0.0, 5.0)
    assert not is_healthy("stopped", 0.0, 5.0)
    assert is_healthy("streaming", 29.0, 5.0) and not is_healthy("streaming", 31.0, 5.0)
    assert is_healthy("streaming", 50.0, 20.0) and not is_healthy("streaming", 61.0, 20.0)
