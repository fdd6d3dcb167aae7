"""Source positions: PostgreSQL LSNs and a total order over change events.

``SourcePosition(commit, event)`` orders events of one source: ``commit`` is the
position of the transaction's commit (PostgreSQL: the commit LSN; SQLite: the relay's
transaction number) and ``event`` the position of the change inside it. Redelivered
events carry the same position, so sinks can drop anything at or below what they
already applied. It is written into ``source.sequence`` as Debezium does: a JSON array
of two decimal strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["SourcePosition", "format_lsn", "parse_lsn"]

_MAX_LSN = (1 << 64) - 1


def parse_lsn(text: str) -> int:
    """``parse_lsn("16/B374D848") == 0x16B374D848``."""
    hi, sep, lo = text.strip().partition("/")
    if not sep:
        raise ValueError(f"not an LSN (expected X/Y in hex): {text!r}")
    try:
        value = (int(hi, 16) << 32) | int(lo, 16)
    except ValueError:
        raise ValueError(f"not an LSN (expected X/Y in hex): {text!r}") from None
    if int(lo, 16) > 0xFFFFFFFF or value > _MAX_LSN:
        raise ValueError(f"LSN out of range: {text!r}")
    return value


def format_lsn(value: int) -> str:
    if not 0 <= value <= _MAX_LSN:
        raise ValueError(f"LSN out of range: {value}")
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


@dataclass(frozen=True, order=True, slots=True)
class SourcePosition:
    commit: int
    event: int

    def sequence(self) -> str:
        """Debezium's ``source.sequence``: ``'["<commit>","<event>"]'``."""
        return f'["{self.commit}","{self.event}"]'

    @classmethod
    def from_sequence(cls, text: str) -> SourcePosition:
        try:
            commit, event = json.loads(text)
            return cls(int(commit if commit is not None else event), int(event))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a source sequence: {text!r}") from exc
