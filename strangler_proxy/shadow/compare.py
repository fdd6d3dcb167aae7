"""JSON-aware structural diff of two observations (pure).

Differences are typed and carry a concrete path: ``status``, ``headers.<name>`` or a
JSONPath into the body (``$.items[2].price``, ``$.results[id=7].name`` for lists
compared as sets). Numbers compare by value (``10.0 == 10``), decimal strings
optionally too (``"10.50" == "10.5"``). A list whose elements are all present but in
another order yields one ``list_order`` difference instead of one per element.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, NamedTuple

import orjson

from strangler_proxy.shadow.normalize import Parsed, Text, decimal_value, media_type, parse_body
from strangler_proxy.shadow.observation import HeaderBlock, Observation, raw_values
from strangler_proxy.shadow.rules import CompareRules, field_path, segment


class Kind(StrEnum):
    VALUE_CHANGED = "value_changed"
    MISSING = "missing"  # in the primary, not in the candidate
    EXTRA = "extra"  # in the candidate, not in the primary
    TYPE_CHANGED = "type_changed"
    LIST_LENGTH = "list_length"
    LIST_ORDER = "list_order"


class Difference(NamedTuple):  # a tuple: made by the thousand on the comparison path
    path: str
    kind: Kind
    primary: Any
    candidate: Any

    @property
    def field(self) -> str:
        """The path with list positions generalised (``$.items[*].price``)."""
        return field_path(self.path)

    @property
    def key(self) -> str:
        """What differences are counted by: ``"<kind> <field>"``."""
        return self.kind + " " + field_path(self.path)


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, Text):
        return "text"
    return type(value).__name__


_SORT = orjson.OPT_SORT_KEYS


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=_SORT)


def diff_json(
    primary: Any, candidate: Any, rules: CompareRules, path: str = "$"
) -> list[Difference]:
    out: list[Difference] = []
    _walk(primary, candidate, path, rules, out)
    return out


_ABSENT: Any = object()


def _same(a: Any, b: Any) -> bool:
    """Cheap certainty that two values need no walk (same type and equal; containers
    confirmed canonically, since ``True == 1`` in Python)."""
    t = type(a)
    if t is not type(b) or a != b:
        return False
    return (t is not dict and t is not list) or _canonical(a) == _canonical(b)


def _walk(a: Any, b: Any, path: str, rules: CompareRules, out: list[Difference]) -> None:
    ta, tb = type(a), type(b)
    if ta is dict and tb is dict:
        missing = 0
        get = b.get
        for k, va in a.items():
            vb = get(k, _ABSENT)
            tv = type(va)
            # inlined _same(): most fields of most answers are equal
            flat = tv is not dict and tv is not list
            if tv is type(vb) and va == vb and (flat or _same(va, vb)):
                continue
            if vb is _ABSENT:
                missing += 1
                out.append(Difference(path + segment(k), Kind.MISSING, va, None))
            else:
                _walk(va, vb, path + segment(k), rules, out)
        if len(b) > len(a) - missing:
            for k, vb in b.items():
                if k not in a:
                    out.append(Difference(path + segment(k), Kind.EXTRA, None, vb))
        return
    if ta is list and tb is list:
        _walk_list(a, b, path, rules, out)
        return
    if ta is tb or (ta in (int, float) and tb in (int, float)):
        if a == b:
            return
        if (
            ta is str
            and rules.decimal_strings
            and (da := decimal_value(a)) is not None
            and da == decimal_value(b)
        ):
            return
        out.append(Difference(path, Kind.VALUE_CHANGED, a, b))
        return
    out.append(Difference(path, Kind.TYPE_CHANGED, a, b))


def _walk_list(
    a: list[Any], b: list[Any], path: str, rules: CompareRules, out: list[Difference]
) -> None:
    key = rules.list_key(path) if rules.list_keys else None
    if key is not None:
        ka, kb = _keyed(a, key), _keyed(b, key)
        if ka is not None and kb is not None:
            for k, va in ka.items():
                sub = f"{path}[{key}={k}]"
                if k in kb:
                    if not _same(va, kb[k]):
                        _walk(va, kb[k], sub, rules, out)
                else:
                    out.append(Difference(sub, Kind.MISSING, va, None))
            for k, vb in kb.items():
                if k not in ka:
                    out.append(Difference(f"{path}[{key}={k}]", Kind.EXTRA, None, vb))
            return
    if len(a) != len(b):
        out.append(Difference(path, Kind.LIST_LENGTH, len(a), len(b)))
        return
    if a == b and _same(a, b):
        return
    if len(a) > 1 and _scalars(a) and _scalars(b) and _same_elements(a, b):
        out.append(Difference(path, Kind.LIST_ORDER, _positions(a), _positions(b)))
        return
    inner: list[Difference] = []
    for i, (va, vb) in enumerate(zip(a, b, strict=True)):
        if not _same(va, vb):
            _walk(va, vb, f"{path}[{i}]", rules, inner)
    if not inner:
        return
    if len(a) > 1 and _same_elements(a, b):
        out.append(Difference(path, Kind.LIST_ORDER, _positions(a), _positions(b)))
        return
    out.extend(inner)


_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})


def _scalars(items: list[Any]) -> bool:
    return all(type(x) in _SCALAR_TYPES for x in items)


def _same_elements(a: list[Any], b: list[Any]) -> bool:
    """Whether two lists hold the same elements, ignoring order."""
    for x, y in zip(a, b, strict=True):
        if type(x) is not type(y) or x != y:
            if x not in b:  # a changed element, not a moved one: no re-serialising
                return False
            break
    if all(type(x) is str for x in a) and all(type(x) is str for x in b):
        return sorted(a) == sorted(b)
    return sorted(map(_canonical, a)) == sorted(map(_canonical, b))


def _positions(items: list[Any]) -> list[str]:
    """A short fingerprint of each element, to show how the order changed."""
    return [v[:40] if type(v) is str else _canonical(v).decode()[:40] for v in items]


def _keyed(items: list[Any], key: str) -> dict[str, Any] | None:
    found: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict) or key not in item:
            return None
        k = str(item[key])
        if k in found:
            return None
        found[k] = item
    return found


def header_value(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    values = [v for n, v in headers if n == name]
    if not values:
        return None
    joined = ", ".join(values)
    return media_type(joined) if name == "content-type" else joined.strip()


def diff_bodies(primary: Parsed, candidate: Parsed, rules: CompareRules) -> list[Difference]:
    if primary.is_json and candidate.is_json:
        try:
            if _canonical(primary.value) == _canonical(candidate.value):
                return []
            return diff_json(primary.value, candidate.value, rules)
        except (RecursionError, orjson.JSONEncodeError):  # nested too deep: say so at the root
            return [Difference("$", Kind.VALUE_CHANGED, "<nested too deep to diff>", None)]
    pv, cv = primary.value, candidate.value
    if primary.is_json != candidate.is_json:
        return [Difference("$", Kind.TYPE_CHANGED, _shown(pv), _shown(cv))]
    assert isinstance(pv, Text) and isinstance(cv, Text)
    if pv.value == cv.value:
        return []
    return [Difference("$", Kind.VALUE_CHANGED, *_snippets(pv.value, cv.value))]


def _shown(value: Any) -> Any:
    return value.value[:200] if isinstance(value, Text) else value


def _snippets(a: str, b: str, width: int = 60) -> tuple[str, str]:
    """The neighbourhood of the first place two texts differ."""
    i = 0
    limit = min(len(a), len(b))
    while i < limit and a[i] == b[i]:
        i += 1
    start = max(0, i - width // 2)
    return a[start : start + width], b[start : start + width]


def compare(primary: Observation, candidate: Observation, rules: CompareRules) -> list[Difference]:
    """Every difference between two answers that both arrived (statuses not None)."""
    out: list[Difference] = []
    if primary.status != candidate.status:
        out.append(Difference("status", Kind.VALUE_CHANGED, primary.status, candidate.status))
    for name in rules.headers:
        hp, hc = header_value(primary.headers, name), header_value(candidate.headers, name)
        if hp != hc:
            kind = Kind.MISSING if hc is None else Kind.EXTRA if hp is None else Kind.VALUE_CHANGED
            out.append(Difference(f"headers.{name}", kind, hp, hc))
    if rules.status_only or primary.body == candidate.body:
        return out
    out.extend(
        diff_bodies(
            parse_body(primary.body, primary.content_type, rules.text),
            parse_body(candidate.body, candidate.content_type, rules.text),
            rules,
        )
    )
    return out


RawHeaders = Sequence[tuple[bytes, bytes]]


def same_raw(
    rules: CompareRules,
    primary: tuple[int | None, RawHeaders, bytes],
    candidate: tuple[int | None, RawHeaders, bytes],
) -> bool:
    """True when :func:`compare` would certainly find nothing: equal statuses, the
    compared headers byte-identical, and byte-identical bodies (not needed for
    status-only routes). False only means "compare properly" — not "different".

    Each answer is ``(status, headers with lower-case byte names, body)``.
    """
    status, headers, body = primary
    c_status, c_headers, c_body = candidate
    if status is None or status != c_status:
        return False
    if not rules.status_only and body != c_body:
        return False
    names = rules.raw_header_names
    if names and not (
        type(headers) is HeaderBlock and type(c_headers) is HeaderBlock
        and headers.block == c_headers.block
    ):
        for name in names:
            if raw_values(headers, name) != raw_values(c_headers, name):
                return False
    return True
