"""What the engine writes and the report reads: tallies and samples (plain values).

A tally counts results that share an endpoint, a time bucket, a source (``candidate``:
primary vs candidate; ``noise``: primary vs secondary), an outcome and a *signature* —
the sorted set of difference keys (``"<kind> <field path>"``) the result carried.
Per-field counts, mismatch rates and noise-adjusted rates are all sums over tallies, so
the noise subtraction can be decided at report time without revisiting results.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from strangler_proxy.shadow.result import Outcome, Result

CANDIDATE = "candidate"
NOISE = "noise"
BUCKET_S = 60


class Endpoint(NamedTuple):  # tuples: cheap to hash on the comparison path
    service: str
    route: str
    method: str

    def __str__(self) -> str:
        return f"{self.method} {self.route}"


class TallyKey(NamedTuple):
    endpoint: Endpoint
    bucket: int  # unix time, start of a BUCKET_S window
    source: str  # CANDIDATE or NOISE
    outcome: str  # an Outcome value; noise tallies use matched / mismatched
    signature: tuple[str, ...] = ()  # difference keys not ignored
    ignored: tuple[str, ...] = ()  # difference keys covered by ignore rules


@dataclass(frozen=True, slots=True)
class Tally:
    key: TallyKey
    count: int


@dataclass(frozen=True, slots=True)
class Sample:
    """One exchange kept for inspection, filed under one field key of one endpoint."""

    endpoint: Endpoint
    field: str  # a difference key, "<kind> <field path>"
    source: str
    ts: float
    request_id: str
    payload: dict[str, Any]


def bucket_of(ts: float) -> int:
    return int(ts // BUCKET_S) * BUCKET_S


DiffKeys = tuple[list[str], list[str], list[str]]  # (differences, ignored, noise)


def diff_keys(result: Result) -> DiffKeys:
    return (
        [d.key for d in result.differences],
        [d.key for d in result.ignored],
        [d.key for d in result.noise or ()],
    )


def tally_keys(
    endpoint: Endpoint, ts: float, result: Result, keys: DiffKeys | None = None
) -> list[TallyKey]:
    """The tallies one result adds to (one for the candidate, one more for noise)."""
    bucket = bucket_of(ts)
    found, ignored, noisy = keys or diff_keys(result)
    tallies = [
        TallyKey(
            endpoint,
            bucket,
            CANDIDATE,
            result.outcome.value,
            _signature(found),
            _signature(ignored),
        )
    ]
    if result.error:
        tallies[0] = TallyKey(endpoint, bucket, CANDIDATE, Outcome.ERROR.value, (result.error,))
    if result.noise is not None:
        outcome = Outcome.MISMATCHED if result.noise else Outcome.MATCHED
        tallies.append(TallyKey(endpoint, bucket, NOISE, outcome.value, _signature(noisy)))
    return tallies


def _signature(keys: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(keys)))


def merge(tallies: Iterable[Tally]) -> Counter[TallyKey]:
    counts: Counter[TallyKey] = Counter()
    for t in tallies:
        counts[t.key] += t.count
    return counts
