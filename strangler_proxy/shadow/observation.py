"""The values the shadow mirror hands to the comparison engine.

The proxy builds one :class:`Exchange` per mirrored request — the primary (monolith)
answer the client got, the candidate's answer and, for a sampled share of safe
requests, a second monolith answer used to learn noise — and passes it to an
:class:`ExchangeSink`. Sinks must never block or raise into the proxy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, overload

# Header a service sets to say which source position (CDC) its data reflects.
SOURCE_POSITION_HEADER = "x-strangler-source-position"
# Header the proxy sets on mirrored writes; services roll back and suppress side effects.
DRY_RUN_HEADER = "x-strangler-dry-run"


@dataclass(frozen=True, slots=True)
class Observation:
    """One upstream's answer (or failure) to one request."""

    target: str  # "monolith", "candidate" or "monolith-secondary"
    status: int | None  # None when the upstream failed before answering
    headers: tuple[tuple[str, str], ...]  # lower-cased names, in order received
    body: bytes
    duration_s: float
    error: str | None = None  # "connect_error", "timeout", ... when status is None
    source_position: str | None = None  # value of SOURCE_POSITION_HEADER, if sent

    @property
    def content_type(self) -> str:
        for name, value in self.headers:
            if name == "content-type":
                return value
        return ""


@dataclass(frozen=True, slots=True)
class ObservedRequest:
    service: str
    route: str  # the plan's path template that matched, e.g. /api/notifications/{id}
    method: str
    path: str  # raw path as received
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    request_id: str
    ts: float  # unix time the proxy received it


@dataclass(frozen=True, slots=True)
class Exchange:
    request: ObservedRequest
    primary: Observation
    candidate: Observation
    secondary: Observation | None = None  # second monolith answer, for noise learning
    tags: tuple[tuple[str, str], ...] = field(default=())


RawHeader = tuple[bytes, bytes]

# a field line of a block that already passed a parser's grammar: the value runs to the
# CR; leading whitespace dropped, trailing kept (as httptools and quickhead.field_lines)
_FIELD = re.compile(rb"([^:\r\n]+):[ \t]*([^\r]*)\r\n")
_VALUE_OF: dict[bytes, re.Pattern[bytes]] = {}


class HeaderBlock(Sequence[RawHeader]):
    """Header lines as they came (``name: value\\r\\n`` each, no blank line): a sequence
    of ``(lower-cased name, value)`` pairs that splits the block only when first read.

    The mirror writes ``block`` as it is, and comparing the headers of two identical
    blocks, or one header by name (:meth:`values`), needs no splitting either — so a
    mirrored exchange whose answers match is never taken apart header by header."""

    __slots__ = ("_pairs", "_values", "block")

    def __init__(self, block: bytes) -> None:
        self.block = block
        self._pairs: list[RawHeader] | None = None
        self._values: dict[bytes, list[bytes]] | None = None  # (a head repeats: cached)

    def pairs(self) -> list[RawHeader]:
        pairs = self._pairs
        if pairs is None:
            pairs = self._pairs = [(n.lower(), v) for n, v in _FIELD.findall(self.block)]
        return pairs

    def values(self, name: bytes) -> list[bytes]:
        """The values of the header ``name`` (lower-case), in order."""
        known = self._values
        if known is None:
            known = self._values = {}
        else:
            found = known.get(name)
            if found is not None:
                return found
        pattern = _VALUE_OF.get(name)
        if pattern is None:
            pattern = re.compile(rb"(?:^|\n)%s:[ \t]*([^\r]*)\r" % re.escape(name), re.I)
            if len(_VALUE_OF) < 256:
                _VALUE_OF[name] = pattern
        found = known[name] = pattern.findall(self.block)
        return found

    def __len__(self) -> int:
        return len(self.pairs())

    def __iter__(self) -> Iterator[RawHeader]:
        return iter(self.pairs())

    @overload
    def __getitem__(self, index: int) -> RawHeader: ...
    @overload
    def __getitem__(self, index: slice) -> list[RawHeader]: ...
    def __getitem__(self, index: int | slice) -> RawHeader | list[RawHeader]:
        return self.pairs()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HeaderBlock):
            return self.block == other.block
        if isinstance(other, Sequence):
            return self.pairs() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"HeaderBlock({self.block!r})"


def raw_values(headers: Sequence[RawHeader], name: bytes) -> list[bytes]:
    """The values of header ``name`` (lower-case bytes) in raw headers, in order."""
    if type(headers) is HeaderBlock:
        return headers.values(name)
    found = []
    for n, v in headers:  # (a loop: a comprehension's frame costs more on 3.11)
        if n == name:
            found.append(v)
    return found


class ExchangeSink(Protocol):
    def submit(self, exchange: Exchange) -> None:
        """Accept an exchange without blocking; drop (and count) rather than wait."""


class RawExchange(Protocol):
    """A mirrored exchange still in the proxy's raw form (bytes, undecoded headers).

    A sink that also has ``submit_raw(raw: RawExchange)`` gets these instead of
    :class:`Exchange`: it can settle the common case — byte-identical answers — from
    the raw fields and call :meth:`exchange` only for pairs it has to look into.
    Header names are lower-case bytes; ``candidate_status`` is None when the candidate
    failed (``candidate_error`` says how); ``secondary`` is a second monolith answer.
    """

    @property
    def service(self) -> str: ...
    @property
    def route(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def ts(self) -> float: ...
    @property
    def primary_status(self) -> int: ...
    @property
    def primary_headers(self) -> Sequence[tuple[bytes, bytes]]: ...
    @property
    def primary_body(self) -> bytes: ...
    @property
    def candidate_status(self) -> int | None: ...
    @property
    def candidate_headers(self) -> Sequence[tuple[bytes, bytes]]: ...
    @property
    def candidate_body(self) -> bytes: ...
    @property
    def candidate_error(self) -> str | None: ...
    @property
    def secondary(self) -> Observation | None: ...

    def exchange(self) -> Exchange:
        """The decoded :class:`Exchange` (what ``submit`` would have been given)."""
        ...


class NullSink:
    """Discards everything: the default when no comparison engine is configured."""

    def submit(self, exchange: Exchange) -> None:
        return None
