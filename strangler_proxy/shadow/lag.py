"""Is a mismatch explained by the candidate's data being behind? (pure)

Services say which source position (CDC) their data reflects in the
``x-strangler-source-position`` header. Positions are ``<scheme>:<value>``:

* ``lsn:0/16B3748`` (or a bare ``0/16B3748``) — a PostgreSQL LSN;
* ``seq:1234`` (or a bare ``1234``) — a changelog sequence number (SQLite capture);
* ``<scheme>:<n>[.<n>...]`` — any other monotonic position made of integers.

Positions of different schemes are not comparable. The reference is the position
the proxy expected (exchange tag :data:`EXPECTED_POSITION_TAG`), else the primary's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

EXPECTED_POSITION_TAG = "expected_source_position"

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
    cand = SourcePosition.parse(candidate)
    ref = SourcePosition.parse(expected) or SourcePosition.parse(primary)
    if cand is None or ref is None or cand.scheme != ref.scheme:
        return LagVerdict.UNKNOWN
    return LagVerdict.BEHIND if cand < ref else LagVerdict.CURRENT
