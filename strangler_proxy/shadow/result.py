"""The verdict on one exchange (pure).

Ignore rules apply after differences are found, so ignored differences stay visible.
Noise (primary vs secondary) is carried along; it is subtracted only when a report
aggregates many results.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from strangler_proxy.shadow.compare import Difference, compare
from strangler_proxy.shadow.lag import EXPECTED_POSITION_TAG, LagVerdict, classify_lag
from strangler_proxy.shadow.observation import Exchange
from strangler_proxy.shadow.rules import CompareRules


class Outcome(StrEnum):
    MATCHED = "matched"
    MISMATCHED = "mismatched"
    IGNORED = "ignored"  # every difference is covered by an ignore rule
    LAG = "lag"  # differences, but the candidate's data is behind the primary's
    ERROR = "error"  # an upstream did not answer


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    differences: tuple[Difference, ...] = ()
    ignored: tuple[Difference, ...] = ()
    noise: tuple[Difference, ...] | None = None  # None: no secondary answer to learn from
    error: str | None = None  # "candidate: timeout", "monolith: connect_error"
    lag: LagVerdict = LagVerdict.UNKNOWN

    @property
    def candidate_failed(self) -> bool:
        return self.outcome is Outcome.ERROR and (self.error or "").startswith("candidate")


def judge(exchange: Exchange, rules: CompareRules) -> Result:
    primary, candidate, secondary = exchange.primary, exchange.candidate, exchange.secondary
    if primary.status is None:
        return Result(Outcome.ERROR, error=f"monolith: {primary.error or 'no answer'}")
    noise: tuple[Difference, ...] | None = None
    if secondary is not None and secondary.status is not None:
        noise = tuple(d for d in compare(primary, secondary, rules) if not rules.is_ignored(d.path))
    if candidate.status is None:
        return Result(
            Outcome.ERROR, noise=noise, error=f"candidate: {candidate.error or 'no answer'}"
        )
    found = compare(primary, candidate, rules)
    if not found:
        return Result(Outcome.MATCHED, noise=noise)
    kept: list[Difference] = []
    ignored: list[Difference] = []
    for d in found:
        (ignored if rules.is_ignored(d.path) else kept).append(d)
    if not kept:
        return Result(Outcome.IGNORED, ignored=tuple(ignored), noise=noise)
    expected = dict(exchange.tags).get(EXPECTED_POSITION_TAG)
    lag = classify_lag(primary.source_position, candidate.source_position, expected)
    outcome = Outcome.LAG if lag is LagVerdict.BEHIND else Outcome.MISMATCHED
    return Result(outcome, tuple(kept), tuple(ignored), noise, lag=lag)
