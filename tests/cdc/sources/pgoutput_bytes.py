"""pgoutput protocol-1 messages written byte by byte from PostgreSQL's documented
layout ("Logical Replication Message Formats"), independent of the decoder."""

from __future__ import annotations

import struct

PG_EPOCH_US = 946_684_800_000_000


def cstr(s: str) -> bytes:
    return s.encode() + b"\x00"


def tuple_data(*values: str | bytes | None) -> bytes:
    out = struct.pack("!h", len(values))
    for v in values:
        if v is None:
            out += b"n"
        elif v == b"u":
            out += b"u"
        else:
            assert isinstance(v, str)
            raw = v.encode()
            out += b"t" + struct.pack("!i", len(raw)) + raw
    return out


def begin(final_lsn: int, unix_us: int, xid: int) -> bytes:
    return b"B" + struct.pack("!QqI", final_lsn, unix_us - PG_EPOCH_US, xid)


def commit(commit_lsn: int, end_lsn: int, unix_us: int) -> bytes:
    return b"C" + struct.pack("!BQQq", 0, commit_lsn, end_lsn, unix_us - PG_EPOCH_US)


def relation(relid: int, nsp: str, name: str, ident: str,
             cols: list[tuple[bool, str, int, int]]) -> bytes:
    out = b"R" + struct.pack("!I", relid) + cstr(nsp) + cstr(name) + ident.encode()
    out += struct.pack("!h", len(cols))
    for is_key, col, oid, typmod in cols:
        out += bytes([1 if is_key else 0]) + cstr(col) + struct.pack("!Ii", oid, typmod)
    return out


def insert(relid: int, *values: str | bytes | None) -> bytes:
    return b"I" + struct.pack("!I", relid) + b"N" + tuple_data(*values)


def update(relid: int, new: tuple[str | bytes | None, ...],
           old: tuple[str | bytes | None, ...] | None = None, kind: bytes = b"O") -> bytes:
    out = b"U" + struct.pack("!I", relid)
    if old is not None:
        out += kind + tuple_data(*old)
    return out + b"N" + tuple_data(*new)


def delete(relid: int, old: tuple[str | None, ...], kind: bytes = b"K") -> bytes:
    return b"D" + struct.pack("!I", relid) + kind + tuple_data(*old)


def truncate(relids: list[int], options: int = 0) -> bytes:
    head = struct.pack("!IB", len(relids), options)
    return b"T" + head + struct.pack(f"!{len(relids)}I", *relids)
