"""pgoutput tuple bytes → the JSON text of each converted column value (pure).

The streaming hot path skips the intermediate values: one :class:`RowJson` per relation
reads a text-format tuple straight out of the message buffer and writes, per column,
exactly the bytes ``orjson.dumps(column_type.convert(text))`` would — integers are
already JSON, safe ASCII text only needs quotes, ``numeric(p,s)`` and ``timestamptz``
are rewritten at byte level; every other type goes through its ``ColumnType``.
Anything unusual (an unchanged TOAST value, a value the fast forms do not cover, a
conversion error, a malformed buffer) returns None and the caller takes the general
path, which reports errors properly.
"""

from __future__ import annotations

import binascii
import re
import struct
from collections.abc import Callable, Sequence
from typing import Final

import orjson

from cdc.types import ColumnType, decimal_bytes

__all__ = ["Fragment", "RowJson", "fragment_writer"]

Fragment = Callable[[bytes], bytes]
"""Text-format column value (bytes) → its JSON text."""

_INT_OIDS: Final = frozenset({20, 21, 23, 26})
_STRING_OIDS: Final = frozenset({18, 19, 25, 114, 1042, 1043, 2950, 3802})
_UNSAFE: Final = re.compile(rb'[^\x20\x21\x23-\x5b\x5d-\x7e]')
_LEN: Final = struct.Struct("!i").unpack_from
_COUNT: Final = struct.Struct("!h").unpack_from
_FAST_ERRORS: Final = (ValueError, TypeError, ArithmeticError, IndexError, struct.error)


def _generic(column_type: ColumnType) -> Fragment:
    convert, dumps = column_type.convert, orjson.dumps

    def write(raw: bytes) -> bytes:
        return dumps(convert(raw.decode("utf-8")))

    return write


def _string(raw: bytes) -> bytes:
    if _UNSAFE.search(raw) is None:
        return b'"' + raw + b'"'
    return orjson.dumps(raw.decode("utf-8"))


def _bool(raw: bytes) -> bytes:
    return b"true" if raw == b"t" or raw == b"true" else b"false"


def _decimal(scale: int, slow: Fragment) -> Fragment:
    b64 = binascii.b2a_base64

    def write(raw: bytes) -> bytes:
        whole, dot, frac = raw.partition(b".")
        if len(frac) == scale and (dot or not scale) and whole.lstrip(b"-").isdigit():
            return b'"' + b64(decimal_bytes(int(whole + frac)), newline=False) + b'"'
        return slow(raw)

    return write


def _zoned_timestamp(width: int, slow: Fragment) -> Fragment:
    def write(raw: bytes) -> bytes:
        # the session is pinned to UTC: "YYYY-MM-DD HH:MM:SS[.ffffff]+00"
        if len(raw) >= 22 and raw[10] == 0x20 and raw[4] == 0x2D and raw.endswith(b"+00"):
            if width:
                frac = raw[20:-3] if raw[19] == 0x2E else b""
                return (
                    b'"' + raw[:10] + b"T" + raw[11:19] + b"."
                    + frac[:width].ljust(width, b"0") + b'Z"'
                )
            return b'"' + raw[:10] + b"T" + raw[11:19] + b'Z"'
        return slow(raw)

    return write


def fragment_writer(type_oid: int, typmod: int, column_type: ColumnType) -> Fragment | None:
    """The JSON writer for one column; None means the text is already its JSON (ints)."""
    if type_oid in _INT_OIDS:
        return None
    if type_oid in _STRING_OIDS:
        return _string
    if type_oid == 16:
        return _bool
    slow = _generic(column_type)
    if type_oid == 1700 and typmod >= 4:
        return _decimal((typmod - 4) & 0xFFFF, slow)
    if type_oid == 1184:
        return _zoned_timestamp(6 if typmod < 0 else min(typmod, 6), slow)
    return slow


class RowJson:
    """``RowJson(writers).read(buf, pos)`` → one JSON fragment per column, or None."""

    __slots__ = ("_writers",)

    def __init__(self, writers: Sequence[Fragment | None]) -> None:
        self._writers = tuple(writers)

    def read(self, buf: bytes, pos: int) -> list[bytes] | None:
        """Parse the TupleData at ``pos`` (int16 column count, then the columns)."""
        try:
            writers = self._writers
            if _COUNT(buf, pos)[0] != len(writers):
                return None
            pos += 2
            out: list[bytes] = []
            append = out.append
            for write in writers:
                kind = buf[pos]
                if kind == 0x74:  # 't' text
                    start = pos + 5
                    pos = start + _LEN(buf, pos + 1)[0]
                    raw = buf[start:pos]
                    append(raw if write is None else write(raw))
                elif kind == 0x6E:  # 'n' null
                    append(b"null")
                    pos += 1
                else:  # unchanged TOAST, binary: the general path
                    return None
            if pos != len(buf):
                return None
            return out
        except _FAST_ERRORS:
            return None
