"""Per-upstream circuit breaker.

``closed`` → (``threshold`` consecutive failures) → ``open`` → (``cooldown_s`` passes)
→ ``half_open``: one probe request is let through; success closes the breaker, failure
opens it again for another cool-down. The clock is passed in, so the state machine is a
pure function of the calls made on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

State = Literal["closed", "open", "half_open"]


@dataclass(slots=True)
class Breaker:
    """``Breaker(threshold=5, cooldown_s=10.0)``."""

    threshold: int = 5
    cooldown_s: float = 10.0
    state: State = "closed"
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = False
    opens: int = field(default=0)

    def allow(self, now: float) -> bool:
        """May a request go to this upstream now? Claims the probe slot when half-open."""
        if self.state == "closed":
            return True
        if self.state == "open":
            if now - self.opened_at < self.cooldown_s:
                return False
            self.state = "half_open"
            self.probing = False
        if self.probing:
            return False
        self.probing = True
        return True

    def success(self) -> None:
        self.state = "closed"
        self.failures = 0
        self.probing = False

    def failure(self, now: float) -> None:
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.threshold:
            if self.state != "open":
                self.opens += 1
            self.state = "open"
            self.opened_at = now
            self.probing = False

    def release(self) -> None:
        """The request that claimed the probe ended without a verdict (e.g. client left)."""
        self.probing = False
