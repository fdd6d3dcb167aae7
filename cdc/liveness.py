"""Health and rate figures shared by the capture runners (pure)."""

from __future__ import annotations

from collections.abc import Sequence


def is_healthy(state: str, loop_age_s: float, heartbeat_interval_s: float) -> bool:
    """A runner is healthy unless it stopped or failed, or its loop stalled for longer than
    three heartbeats (at least 30 s)."""
    if state in ("failed", "stopped"):
        return False
    return loop_age_s < max(30.0, 3 * heartbeat_interval_s)


def events_per_second(samples: Sequence[tuple[float, int]]) -> float:
    """Rate between the oldest and newest ``(monotonic time, delivered count)`` sample."""
    if len(samples) < 2:
        return 0.0
    (t0, n0), (t1, n1) = samples[0], samples[-1]
    return round((n1 - n0) / (t1 - t0), 1) if t1 > t0 else 0.0
