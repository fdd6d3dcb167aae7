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
from typing import Any, Final

import orjson

from cdc.types import ColumnType

__all__ = ["Fragment", "Row", "RowJson", "fragment_writer"]

Fragment = Callable[[bytes], bytes]
"""Text-format column value (bytes) → its JSON text."""
Row = tuple[bytes, ...]

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
            n = int(whole + frac)
            size = (n.bit_length() if n >= 0 else (~n).bit_length()) // 8 + 1
            return b'"%s"' % b64(n.to_bytes(size, "big", signed=True), newline=False)
        return slow(raw)

    return write


def _zoned_timestamp(width: int, slow: Fragment) -> Fragment:
    size = 20 + width if width else 19  # "YYYY-MM-DDTHH:MM:SS[.fff…]"

    def write(raw: bytes) -> bytes:
        # the session is pinned to UTC: "YYYY-MM-DD HH:MM:SS[.ffffff]+00", PostgreSQL
        # drops trailing zeros of the fraction
        if len(raw) >= 22 and raw[10] == 0x20 and raw[4] == 0x2D and raw.endswith(b"+00"):
            body = raw[:-3].replace(b" ", b"T", 1)
            if len(body) >= size:
                return b'"%sZ"' % body[:size]
            if len(body) == 19:
                body += b"."
            return b'"%sZ"' % body.ljust(size, b"0")
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


def _compile(writers: Sequence[Fragment | None]) -> Callable[[bytes, int], Row | None]:
    """An unrolled reader for one relation's column layout (integers copied, safe text
    quoted inline, other columns through their writer)."""
    ns: dict[str, Any] = {
        "COUNT": _COUNT, "LEN": _LEN, "UNSAFE": _UNSAFE.search, "STRING": _string,
        "ERRORS": _FAST_ERRORS,
    }
    lines = [
        "def read(buf, pos):",
        " try:",
        f"  if COUNT(buf, pos)[0] != {len(writers)}:",
        "   return None",
        "  pos += 2",
    ]
    for i, write in enumerate(writers):
        if write is None:
            convert = [f"   v{i} = buf[s:pos]"]
        elif write is _string:
            convert = ["   raw = buf[s:pos]",
                       f"   v{i} = b'\"' + raw + b'\"' if UNSAFE(raw) is None else STRING(raw)"]
        else:
            ns[f"W{i}"] = write
            convert = [f"   v{i} = W{i}(buf[s:pos])"]
        lines += [
            "  kind = buf[pos]",
            "  if kind == 0x74:",
            "   s = pos + 5",
            "   pos = s + LEN(buf, pos + 1)[0]",
            *convert,
            "  elif kind == 0x6E:",
            f"   v{i} = b'null'",
            "   pos += 1",
            "  else:",
            "   return None",
        ]
    lines += [
        "  if pos != len(buf):",
        "   return None",
        "  return (" + "".join(f"v{i}, " for i in range(len(writers))) + ")",
        " except ERRORS:",
        "  return None",
    ]
    exec(compile("\n".join(lines), "<rowjson>", "exec"), ns)  # the source is built above
    read: Callable[[bytes, int], Row | None] = ns["read"]
    return read


class RowJson:
    """``RowJson(writers).read(buf, pos)`` → the JSON text of every column of the
    TupleData at ``pos`` (int16 column count, then the columns), or None."""

    __slots__ = ("read",)

    def __init__(self, writers: Sequence[Fragment | None]) -> None:
        self.read = _compile(writers)
