"""The pgoutput wire format (protocol version 1), decoded into values (pure).

One function, :func:`decode`, turns the payload of one replication message into a
message value::

    B Begin(final_lsn, commit_ts, xid)          C Commit(flags, commit_lsn, end_lsn, ts)
    R Relation(relid, namespace, name, replica_identity, columns)
    I Insert(relid, new)    U Update(relid, old, old_kind, new)    D Delete(relid, old, kind)
    T Truncate(relids, cascade, restart_identity)
    O Origin(lsn, name)     Y Type(oid, namespace, name)     M LogicalMessage(...)

Tuples are lists of column values: ``str`` (text format), ``None`` (SQL NULL) or
:data:`UNCHANGED` (a TOASTed value PostgreSQL did not send). Timestamps are converted
from PostgreSQL's µs since 2000-01-01 to µs since the Unix epoch.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, NamedTuple

from cdc.errors import DecodeError

__all__ = [
    "UNCHANGED",
    "Begin",
    "Commit",
    "Delete",
    "Insert",
    "LogicalMessage",
    "Message",
    "Origin",
    "Relation",
    "RelationColumn",
    "Truncate",
    "TypeInfo",
    "Update",
    "decode",
]

PG_EPOCH_US: Final = 946_684_800_000_000


class _Unchanged:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = _Unchanged()

Value = str | None | _Unchanged


class Begin(NamedTuple):  # a named tuple: one per transaction, cheaper than a dataclass
    final_lsn: int
    commit_ts_us: int
    xid: int


class Commit(NamedTuple):
    flags: int
    commit_lsn: int
    end_lsn: int
    commit_ts_us: int


@dataclass(frozen=True, slots=True)
class Origin:
    lsn: int
    name: str


SINK_ORIGIN_PREFIX = "strangler_sink:"
"""Replication origins a strangler sink sets on its sessions (:mod:`cdc.sinks.origin`):
the capture drops transactions carrying one, so a change applied from the other side of
a two-way sync is never published again."""


def is_sink_origin(name: str) -> bool:
    return name.startswith(SINK_ORIGIN_PREFIX)


@dataclass(frozen=True, slots=True)
class RelationColumn:
    name: str
    type_oid: int
    typmod: int
    is_key: bool


@dataclass(frozen=True, slots=True)
class Relation:
    relid: int
    namespace: str
    name: str
    replica_identity: str
    columns: tuple[RelationColumn, ...]


@dataclass(frozen=True, slots=True)
class TypeInfo:
    oid: int
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class Insert:
    relid: int
    new: list[Value]


@dataclass(frozen=True, slots=True)
class Update:
    relid: int
    old: list[Value] | None
    old_kind: str | None
    new: list[Value]


@dataclass(frozen=True, slots=True)
class Delete:
    relid: int
    old: list[Value]
    old_kind: str


@dataclass(frozen=True, slots=True)
class Truncate:
    relids: tuple[int, ...]
    cascade: bool
    restart_identity: bool


@dataclass(frozen=True, slots=True)
class LogicalMessage:
    transactional: bool
    lsn: int
    prefix: str
    content: bytes


Message = (
    Begin | Commit | Origin | Relation | TypeInfo | Insert | Update | Delete | Truncate
    | LogicalMessage
)

_BEGIN = struct.Struct("!QqI")
_COMMIT = struct.Struct("!BQQq")
_I32 = struct.Struct("!i")
_U32 = struct.Struct("!I")
_I16 = struct.Struct("!h")
_U64 = struct.Struct("!Q")
_REL_COL_TAIL = struct.Struct("!Ii")


def _cstring(buf: bytes, pos: int) -> tuple[str, int]:
    end = buf.index(b"\x00", pos)
    return buf[pos:end].decode("utf-8"), end + 1


def _tuple(buf: bytes, pos: int) -> tuple[list[Value], int]:
    (ncols,) = _I16.unpack_from(buf, pos)
    pos += 2
    values: list[Value] = []
    append = values.append
    unpack_len = _I32.unpack_from
    for _ in range(ncols):
        kind = buf[pos]
        pos += 1
        if kind == 0x74:  # 't' text
            (length,) = unpack_len(buf, pos)
            pos += 4
            append(buf[pos : pos + length].decode("utf-8"))
            pos += length
        elif kind == 0x6E:  # 'n' null
            append(None)
        elif kind == 0x75:  # 'u' unchanged TOAST
            append(UNCHANGED)
        else:
            raise DecodeError(f"unsupported tuple column kind {chr(kind)!r} (binary mode?)")
    if pos > len(buf):
        raise DecodeError(f"truncated tuple: needs {pos} bytes, message has {len(buf)}")
    return values, pos


def _decode(buf: bytes) -> Message:
    tag = buf[0]
    # Begin/Commit first: inserts and updates mostly take the capture's hot path
    if tag == 0x42:  # B
        final_lsn, ts, xid = _BEGIN.unpack_from(buf, 1)
        return Begin(final_lsn, ts + PG_EPOCH_US, xid)
    if tag == 0x43:  # C
        flags, commit_lsn, end_lsn, ts = _COMMIT.unpack_from(buf, 1)
        return Commit(flags, commit_lsn, end_lsn, ts + PG_EPOCH_US)
    if tag == 0x49:  # I
        (relid,) = _U32.unpack_from(buf, 1)
        if buf[5] != 0x4E:
            raise DecodeError("Insert without a new tuple")
        new, _ = _tuple(buf, 6)
        return Insert(relid, new)
    if tag == 0x55:  # U
        (relid,) = _U32.unpack_from(buf, 1)
        pos = 5
        old: list[Value] | None = None
        old_kind: str | None = None
        if buf[pos] in (0x4B, 0x4F):
            old_kind = chr(buf[pos])
            old, pos = _tuple(buf, pos + 1)
        if buf[pos] != 0x4E:
            raise DecodeError("Update without a new tuple")
        new, _ = _tuple(buf, pos + 1)
        return Update(relid, old, old_kind, new)
    if tag == 0x44:  # D
        (relid,) = _U32.unpack_from(buf, 1)
        if buf[5] not in (0x4B, 0x4F):
            raise DecodeError("Delete without a key or old tuple")
        old_d, _ = _tuple(buf, 6)
        return Delete(relid, old_d, chr(buf[5]))
    if tag == 0x52:  # R
        (relid,) = _U32.unpack_from(buf, 1)
        namespace, pos = _cstring(buf, 5)
        name, pos = _cstring(buf, pos)
        replident = chr(buf[pos])
        (ncols,) = _I16.unpack_from(buf, pos + 1)
        pos += 3
        cols = []
        for _ in range(ncols):
            flags = buf[pos]
            col_name, pos = _cstring(buf, pos + 1)
            type_oid, typmod = _REL_COL_TAIL.unpack_from(buf, pos)
            pos += 8
            cols.append(RelationColumn(col_name, type_oid, typmod, bool(flags & 1)))
        return Relation(relid, namespace or "pg_catalog", name, replident, tuple(cols))
    if tag == 0x54:  # T
        (nrels,) = _U32.unpack_from(buf, 1)
        options = buf[5]
        relids = struct.unpack_from(f"!{nrels}I", buf, 6)
        return Truncate(tuple(relids), bool(options & 1), bool(options & 2))
    if tag == 0x4F:  # O
        (lsn,) = _U64.unpack_from(buf, 1)
        origin, _ = _cstring(buf, 9)
        return Origin(lsn, origin)
    if tag == 0x59:  # Y
        (oid,) = _U32.unpack_from(buf, 1)
        namespace, pos = _cstring(buf, 5)
        type_name, _ = _cstring(buf, pos)
        return TypeInfo(oid, namespace, type_name)
    if tag == 0x4D:  # M
        flags = buf[1]
        (lsn,) = _U64.unpack_from(buf, 2)
        prefix, pos = _cstring(buf, 10)
        (length,) = _U32.unpack_from(buf, pos)
        return LogicalMessage(bool(flags & 1), lsn, prefix, bytes(buf[pos + 4 : pos + 4 + length]))
    raise DecodeError(f"unknown pgoutput message type {chr(tag)!r}")


def decode(buf: bytes) -> Message:
    """Decode one pgoutput message; malformed input raises :class:`DecodeError`."""
    if not buf:
        raise DecodeError("empty pgoutput message")
    try:
        return _decode(buf)
    except DecodeError:
        raise
    except (struct.error, IndexError, ValueError, UnicodeDecodeError) as exc:
        raise DecodeError(
            f"malformed pgoutput {chr(buf[0])!r} message ({len(buf)} bytes): {exc}"
        ) from exc
