"""Compare rules from the plan's ``shadow`` blocks, and the JSONPath subset they use.

Supported JSONPath: ``$`` root, ``.name`` / ``['name']`` child, ``..name`` descendant at
any depth, ``.*`` any child, ``[*]`` any list element, ``[3]`` one element. A path
pattern also covers everything beneath what it names (``$.meta`` ignores
``$.meta.etag``).

Plan shape (service level; a route may carry its own ``ignore`` / ``compare``)::

    shadow:
      ignore: ["$.id", "$..created_at"]
      compare: {headers: [content-type], status_only: ["/api/ping"],
                list_keys: {"$.results": id}, decimal_strings: true,
                noise: {relative: 0.5, absolute: 2, min_samples: 10},
                text: {collapse_whitespace: true, replace: ["\\\\d+ ms"]}}

Route overrides add ``ignore`` patterns to the service's and replace ``compare`` keys
one by one; a route's ``compare.status_only`` is a boolean.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from strangler_proxy.shadow.noise import NoiseThresholds
from strangler_proxy.shadow.normalize import TextRules

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")
_TOKEN = re.compile(
    r"""\.\.(?P<deep>[A-Za-z_][A-Za-z0-9_\-]*|\*)"""
    r"""|\.(?P<child>[A-Za-z_][A-Za-z0-9_\-]*|\*)"""
    r"""|\[(?P<index>\d+|\*)\]"""
    r"""|\[['"](?P<quoted>[^'"]*)['"]\]"""
)
_ANY_SEGMENT = r"(?:\.[^.\[]+|\[[^\]]*\])"
_INDEX = re.compile(r"\[(?:\d+|[^\]'=]+=[^\]]*)\]")


def segment(name: str) -> str:
    """The canonical path segment for an object key."""
    if _NAME.match(name):
        return "." + name
    return "['" + name.replace("'", "\\'") + "']"


_FIELD_MEMO: dict[str, str] = {}


def field_path(path: str) -> str:
    """A concrete path with list positions generalised: ``$.a[3].b`` -> ``$.a[*].b``."""
    if "[" not in path:
        return path
    found = _FIELD_MEMO.get(path)
    if found is None:
        if len(_FIELD_MEMO) > 50_000:
            _FIELD_MEMO.clear()
        found = _FIELD_MEMO[path] = _INDEX.sub("[*]", path)
    return found


@dataclass(frozen=True, slots=True)
class JsonPath:
    """One compiled pattern: ``JsonPath.parse("$..created_at").matches("$.a.created_at")``."""

    text: str
    _regex: re.Pattern[str] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, text: str) -> JsonPath:
        if not isinstance(text, str) or not text.startswith("$"):
            raise ValueError(f"JSONPath {text!r} must start with '$'")
        pos, parts = 1, [r"\$"]
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise ValueError(f"JSONPath {text!r}: unsupported syntax at {text[pos:]!r}")
            if m["deep"] is not None:
                parts.append(_ANY_SEGMENT + "*?")
                parts.append(_ANY_SEGMENT if m["deep"] == "*" else re.escape(segment(m["deep"])))
            elif m["child"] is not None:
                parts.append(
                    _ANY_SEGMENT if m["child"] == "*" else re.escape(segment(m["child"]))
                )
            elif m["index"] is not None:
                parts.append(r"\[[^\]]*\]" if m["index"] == "*" else re.escape(f"[{m['index']}]"))
            else:
                parts.append(re.escape(segment(m["quoted"])))
            pos = m.end()
        regex = re.compile("".join(parts) + r"(?=$|[.\[])")
        return cls(text, regex)

    def matches(self, path: str) -> bool:
        """True when the pattern names ``path`` or something above it."""
        return self._regex.match(path) is not None

    def names(self, path: str) -> bool:
        """True when the pattern names exactly ``path``."""
        return self._regex.fullmatch(path) is not None


class PathSet:
    """Several patterns with a bounded memo of answers per concrete path."""

    __slots__ = ("_memo", "patterns")

    def __init__(self, patterns: Sequence[JsonPath]) -> None:
        self.patterns = tuple(patterns)
        self._memo: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, path: str) -> bool:
        hit = self._memo.get(path)
        if hit is None:
            hit = any(p.matches(path) for p in self.patterns)
            if len(self._memo) > 20_000:
                self._memo.clear()
            self._memo[path] = hit
        return hit

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PathSet) and self.patterns == other.patterns

    def __hash__(self) -> int:
        return hash(self.patterns)

    def __repr__(self) -> str:
        return f"PathSet({[p.text for p in self.patterns]!r})"


@dataclass(frozen=True, slots=True)
class CompareRules:
    """How one route's answers are compared.

    ``CompareRules(ignore=PathSet([JsonPath.parse("$.id")]), headers=("content-type",))``
    """

    ignore: PathSet = field(default_factory=lambda: PathSet(()))
    headers: tuple[str, ...] = ("content-type",)
    status_only: bool = False
    list_keys: tuple[tuple[JsonPath, str], ...] = ()
    decimal_strings: bool = True
    noise: NoiseThresholds = field(default_factory=NoiseThresholds)
    text: TextRules = field(default_factory=TextRules)
    _list_key_memo: dict[str, str | None] = field(
        default_factory=dict, repr=False, compare=False
    )
    raw_header_names: tuple[bytes, ...] = field(
        default=(), init=False, repr=False, compare=False
    )  # ``headers`` as the proxy sees them (lower-case bytes), for compare.same_raw

    def __post_init__(self) -> None:
        names = tuple(h.lower().encode("latin-1") for h in self.headers)
        object.__setattr__(self, "raw_header_names", names)

    def list_key(self, path: str) -> str | None:
        """The key field that makes the list at ``path`` a set, if any."""
        if not self.list_keys:
            return None
        memo = self._list_key_memo
        if path in memo:
            return memo[path]
        general = field_path(path)
        found = None
        for pattern, key in self.list_keys:
            if pattern.names(general):
                found = key
                break
        if len(memo) > 20_000:
            memo.clear()
        memo[path] = found
        return found

    def is_ignored(self, path: str) -> bool:
        return self.ignore.matches(path)


@dataclass(frozen=True, slots=True)
class ServiceRules:
    """Rules for every route of one service; unknown routes get the service default."""

    default: CompareRules
    routes: Mapping[str, CompareRules] = field(default_factory=dict)

    def for_route(self, route: str) -> CompareRules:
        return self.routes.get(route, self.default)


_SHADOW_KEYS = {"sample", "writes", "ignore", "noise_sample", "compare"}
_COMPARE_KEYS = {"headers", "status_only", "list_keys", "decimal_strings", "noise", "text"}
_NOISE_KEYS = {"relative", "absolute", "min_samples"}
_TEXT_KEYS = {"collapse_whitespace", "strip_html_comments", "mask_csrf_tokens", "replace"}


def rules_from_mapping(
    shadow: Mapping[str, Any] | None,
    routes: Mapping[str, Mapping[str, Any]] | None = None,
) -> ServiceRules:
    """Validate a service's ``shadow`` block (+ per-route overrides) into rules.

    ``routes`` maps a route's path template to that route's ``shadow`` override
    (``{"ignore": [...], "compare": {...}}``). Raises ValueError naming the bad key.
    """
    shadow = _or_empty(shadow)
    _mapping("shadow", shadow)
    _known("shadow", shadow, _SHADOW_KEYS)
    ignore = _patterns("shadow.ignore", shadow.get("ignore", ()))
    compare = _or_empty(shadow.get("compare"))
    _mapping("shadow.compare", compare)
    _known("shadow.compare", compare, _COMPARE_KEYS)
    status_only_routes = compare.get("status_only", ())
    if not isinstance(status_only_routes, list | tuple) or not all(
        isinstance(r, str) for r in status_only_routes
    ):
        raise ValueError("shadow.compare.status_only: expected a list of route paths")
    base_compare = {k: v for k, v in compare.items() if k != "status_only"}
    # without second monolith answers there is nothing to wait for: judge at once
    learns = _number("shadow.noise_sample", shadow.get("noise_sample", 0.0)) > 0
    warmup = 10 if learns else 0
    default = _build("shadow.compare", ignore, base_compare, False, warmup)

    per_route: dict[str, CompareRules] = {}
    for route in status_only_routes:
        per_route[route] = _build("shadow.compare", ignore, base_compare, True, warmup)
    for route, override in (routes or {}).items():
        where = f"routes[{route}].shadow"
        override = _or_empty(override)
        _mapping(where, override)
        _known(where, override, _SHADOW_KEYS)
        extra = _patterns(f"{where}.ignore", override.get("ignore", ()))
        route_compare = _or_empty(override.get("compare"))
        _mapping(f"{where}.compare", route_compare)
        _known(f"{where}.compare", route_compare, _COMPARE_KEYS)
        status_only = route_compare.get("status_only", route in status_only_routes)
        if not isinstance(status_only, bool):
            raise ValueError(f"{where}.compare.status_only: expected true or false")
        merged = {**base_compare, **{k: v for k, v in route_compare.items() if k != "status_only"}}
        per_route[route] = _build(f"{where}.compare", ignore + extra, merged, status_only, warmup)
    return ServiceRules(default, per_route)


def _build(
    where: str,
    ignore: list[JsonPath],
    compare: Mapping[str, Any],
    status_only: bool,
    warmup: int,
) -> CompareRules:
    headers = compare.get("headers", ["content-type"])
    if not isinstance(headers, list | tuple) or not all(isinstance(h, str) for h in headers):
        raise ValueError(f"{where}.headers: expected a list of header names")
    list_keys = _or_empty(compare.get("list_keys"))
    _mapping(f"{where}.list_keys", list_keys)
    keys: list[tuple[JsonPath, str]] = []
    for path, key in list_keys.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"{where}.list_keys[{path}]: expected a field name")
        keys.append((_pattern(f"{where}.list_keys", path), key))
    decimal_strings = compare.get("decimal_strings", True)
    if not isinstance(decimal_strings, bool):
        raise ValueError(f"{where}.decimal_strings: expected true or false")
    noise_map = _or_empty(compare.get("noise"))
    _mapping(f"{where}.noise", noise_map)
    _known(f"{where}.noise", noise_map, _NOISE_KEYS)
    min_samples = noise_map.get("min_samples", warmup)
    if isinstance(min_samples, bool) or not isinstance(min_samples, int):
        raise ValueError(f"{where}.noise.min_samples: expected a whole number")
    try:
        noise = NoiseThresholds(
            relative=_number(f"{where}.noise.relative", noise_map.get("relative", 0.5)),
            absolute=_number(f"{where}.noise.absolute", noise_map.get("absolute", 2.0)),
            min_samples=min_samples,
        )
    except ValueError as exc:
        raise ValueError(f"{where}.noise: {exc}") from None
    return CompareRules(
        ignore=PathSet(ignore),
        headers=tuple(h.lower() for h in headers),
        status_only=status_only,
        list_keys=tuple(keys),
        decimal_strings=decimal_strings,
        noise=noise,
        text=_text_rules(f"{where}.text", _or_empty(compare.get("text"))),
    )


def _text_rules(where: str, text: Any) -> TextRules:
    _mapping(where, text)
    _known(where, text, _TEXT_KEYS)
    flags: dict[str, bool] = {}
    for key in ("collapse_whitespace", "strip_html_comments", "mask_csrf_tokens"):
        if key in text:
            if not isinstance(text[key], bool):
                raise ValueError(f"{where}.{key}: expected true or false")
            flags[key] = text[key]
    replace = text.get("replace", ())
    if not isinstance(replace, list | tuple) or not all(isinstance(p, str) for p in replace):
        raise ValueError(f"{where}.replace: expected a list of regular expressions")
    for pattern in replace:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{where}.replace: bad pattern {pattern!r}: {exc}") from None
    return TextRules(replace=tuple(replace), **flags)


def _patterns(where: str, value: Any) -> list[JsonPath]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(f"{where}: expected a list of JSONPath patterns")
    return [_pattern(where, v) for v in value]


def _pattern(where: str, value: Any) -> JsonPath:
    try:
        return JsonPath.parse(value)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: expected a number")
    return float(value)


def _mapping(where: str, value: Any) -> None:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(value).__name__}")


def _known(where: str, value: Mapping[str, Any], allowed: set[str]) -> None:
    for key in value:
        if key not in allowed:
            raise ValueError(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _or_empty(value: Any) -> Any:
    return {} if value is None else value
