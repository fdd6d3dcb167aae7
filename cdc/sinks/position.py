"""Source positions: where in the source's change stream an event comes from (pure).

A position orders events the way the source committed them. For PostgreSQL it is the
pair Debezium writes into ``source.sequence`` — ``[last commit LSN, event LSN]`` —
compared as a tuple; when ``sequence`` is absent (older connectors, documentation
examples) both parts fall back to ``source.lsn``. MySQL events (Debezium's serde
examples) are ordered by binlog file, position and row. The SQLite source's changelog id is
published as ``lsn`` and ordered the same way. Duplicated deliveries of one change carry
the same position, so ``position <= stored`` means "already applied".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson


class PositionError(ValueError):
    pass


@dataclass(frozen=True, order=True, slots=True)
class Position:
    commit: int
    change: int

    def __str__(self) -> str:
        return f"{self.commit}:{self.change}"

    def header_value(self) -> str:
        """The form services send in ``x-strangler-source-position``: ``seq:COMMIT.CHANGE``,
        which the shadow engine's lag classification parses and orders the same way."""
        return f"seq:{self.commit}.{self.change}"

    @classmethod
    def parse(cls, text: str) -> Position:
        """Inverse of ``str()``: ``"24023119:24023128"``."""
        try:
            commit, change = text.split(":")
            return cls(int(commit), int(change))
        except ValueError:
            raise PositionError(f"bad source position {text!r}; expected COMMIT:CHANGE") from None


ZERO = Position(0, 0)


def _as_int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise PositionError(f"source.{what} is not a number: {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PositionError(f"source.{what} is not a number: {value!r}") from None


def _binlog(source: Mapping[str, Any]) -> Position:
    """MySQL: ``file`` (``mysql-bin.000003``), ``pos`` and ``row`` within the binlog."""
    file = str(source["file"])
    try:
        number = int(file.rsplit(".", 1)[-1])
    except ValueError:
        raise PositionError(f"source.file is not a numbered binlog: {file!r}") from None
    pos = _as_int(source.get("pos"), "pos") or 0
    row = _as_int(source.get("row"), "row") or 0
    return Position((number << 40) | pos, row)


def position_of(source: Mapping[str, Any]) -> Position:
    """The position of the event whose ``source`` block is given."""
    if "file" in source and "pos" in source and "lsn" not in source:
        return _binlog(source)
    sequence = source.get("sequence")
    if type(sequence) is str and sequence.startswith('["') and sequence.endswith('"]'):
        first, sep, second = sequence[2:-2].partition('","')
        if sep and first.isdigit() and second.isdigit():  # the common case, parsed fast
            return Position(int(first), int(second))
    lsn = _as_int(source.get("lsn"), "lsn")
    commit: int | None = None
    change: int | None = None
    if isinstance(sequence, str) and sequence:
        try:
            parts = orjson.loads(sequence)
        except orjson.JSONDecodeError:
            raise PositionError(f"source.sequence is not JSON: {sequence!r}") from None
        if not isinstance(parts, list) or len(parts) != 2:
            raise PositionError(f"source.sequence must be a pair: {sequence!r}")
        commit = _as_int(parts[0], "sequence[0]")
        change = _as_int(parts[1], "sequence[1]")
    change = change if change is not None else lsn
    if change is None:
        raise PositionError("event has no source position (source.lsn / source.sequence)")
    return Position(commit if commit is not None else change, change)
