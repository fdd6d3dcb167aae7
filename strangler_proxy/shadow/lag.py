"""Is a mismatch explained by the candidate's data being behind? (pure)

Services say which source position (CDC) their data reflects in the
``x-strangler-source-position`` header. Positions are ``<scheme>:<value>``:

* ``lsn:0/16B3748`` (or a bare ``0/16B3748``) — a PostgreSQL LSN;
* ``seq:1234`` (or a bare ``1234``) — a changelog sequence number (SQLite capture);
* ``<scheme>:<n>[.<n>...]`` — any other monotonic position made of integers.

Positions of different schemes are not comparable. The reference is the position
the proxy expected (exchange tag :data:`EXPECTED_POSITION_TAG`), else the primary's.

A position only says the candidate *may* be behind; whether the difference is
explained by that is settled by a re-check (:mod:`strangler_proxy.shadow.recheck`):
a safe request whose mismatch might be lag (:func:`wants_recheck`) is asked of both
sides again once the candidate has caught up with the monolith's answer, and
:func:`recheck_step` turns that second pair into the verdict. The re-checked exchange
goes back to the engine with the verdict in the expected-position tag
(:data:`RECHECKED_BEHIND`, :data:`RECHECKED_CURRENT`), which :func:`classify_lag`
honours and :func:`wants_recheck` never re-checks again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

EXPECTED_POSITION_TAG = "expected_source_position"
# Verdicts a re-check writes into the expected-position tag.
RECHECKED_BEHIND = "recheck:behind"  # the same request agreed once the candidate caught up
RECHECKED_CURRENT = "recheck:current"  # still different with the candidate caught up
NOT_RECHECKED = "recheck:none"  # classify by positions; do not re-check (e.g. shutting down)
_RECHECKED = frozenset({RECHECKED_BEHIND, RECHECKED_CURRENT, NOT_RECHECKED})
SAFE_METHODS = frozenset({"GET", "HEAD"})

_LSN = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")
_INTS = re.compile(r"^\d+(\.\d+)*$")


@dataclass(frozen=True, slots=True, order=True)
class SourcePosition:
    """``SourcePosition.parse("lsn:0/16B3748") < SourcePosition.parse("lsn:0/16B3750")``."""

    scheme: str
    value: tuple[int, ...]

    @classmethod
    def parse(cls, text: str | None) -> SourcePosition | None:
        if not text:
            return None
        text = text.strip()
        scheme, sep, rest = text.partition(":")
        if not sep:
            scheme, rest = ("lsn" if "/" in text else "seq"), text
        scheme = scheme.lower()
        if scheme == "lsn":
            m = _LSN.match(rest)
            return cls("lsn", ((int(m[1], 16) << 32) | int(m[2], 16),)) if m else None
        if _INTS.match(rest):
            return cls(scheme, tuple(int(p) for p in rest.split(".")))
        return None

    def __str__(self) -> str:
        if self.scheme == "lsn":
            v = self.value[0]
            return f"lsn:{v >> 32:X}/{v & 0xFFFFFFFF:X}"
        return f"{self.scheme}:{'.'.join(map(str, self.value))}"


class LagVerdict(StrEnum):
    BEHIND = "behind"  # the candidate's data is older than the reference
    CURRENT = "current"
    UNKNOWN = "unknown"  # no positions, or not comparable


def classify_lag(
    primary: str | None, candidate: str | None, expected: str | None = None
) -> LagVerdict:
    if expected == RECHECKED_BEHIND:
        return LagVerdict.BEHIND
    if expected == RECHECKED_CURRENT:
        return LagVerdict.CURRENT
    cand = SourcePosition.parse(candidate)
    ref = SourcePosition.parse(expected) or SourcePosition.parse(primary)
    if cand is None or ref is None or cand.scheme != ref.scheme:
        return LagVerdict.UNKNOWN
    return LagVerdict.BEHIND if cand < ref else LagVerdict.CURRENT


def is_rechecked(tags: tuple[tuple[str, str], ...]) -> bool:
    return any(name == EXPECTED_POSITION_TAG and value in _RECHECKED for name, value in tags)


def wants_recheck(method: str, verdict: LagVerdict, candidate: str | None) -> bool:
    """Should a mismatch be re-checked before it is counted?

    Only safe requests can be asked again. ``CURRENT`` (the candidate had applied at
    least what the monolith's answer reflects) is a real difference at once. ``BEHIND``
    may be replication delay; so may ``UNKNOWN`` when the candidate is CDC-fed (it
    reports a position) but the monolith gave none to compare with (PostgreSQL).
    """
    if method not in SAFE_METHODS:
        return False
    if verdict is LagVerdict.BEHIND:
        return True
    return verdict is LagVerdict.UNKNOWN and SourcePosition.parse(candidate) is not None


class RecheckStep(StrEnum):
    LAG = "lag"  # the answers agree now: the first difference was the candidate being behind
    MISMATCH = "mismatch"  # still different although the candidate has caught up
    RETRY = "retry"  # cannot tell yet: ask again after a pause
    UNRESOLVED = "unresolved"  # out of time or attempts without agreement: a mismatch


def recheck_step(differs: bool | None, verdict: LagVerdict, time_left: bool) -> RecheckStep:
    """The verdict on one re-check pair.

    ``differs``: the pair's differences after ignore rules (``None``: a side failed);
    ``verdict``: the candidate's position against the monolith's *re-check* answer.
    Giving up is a mismatch — the service kept answering differently for longer than
    the re-check waits, which a replication delay within the CDC gate does not explain.
    """
    if differs is False:
        return RecheckStep.LAG
    if differs is True and verdict is LagVerdict.CURRENT:
        return RecheckStep.MISMATCH
    return RecheckStep.RETRY if time_left else RecheckStep.UNRESOLVED
