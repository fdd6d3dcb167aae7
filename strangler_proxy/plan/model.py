"""The migration plan as immutable values.

Everything here is built by :func:`strangler_proxy.plan.parse.parse_plan`; nothing in
this module reads files or validates input. Mappings are ``MappingProxyType`` and
sequences are tuples, so a plan shared by concurrent requests cannot be changed under
them — a reload builds a new ``Plan`` and swaps one reference.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "ALL_METHODS",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "SAFE_METHODS",
    "CanaryPolicy",
    "CohortCookie",
    "CohortSource",
    "DataPolicy",
    "FallbackPolicy",
    "Finding",
    "Plan",
    "ProxySettings",
    "Route",
    "ServicePlan",
    "ShadowPolicy",
    "Stage",
    "Upstream",
    "freeze",
    "thaw",
]

SAFE_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
ALL_METHODS: frozenset[str] = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}
)


DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_READ_TIMEOUT = 30.0


class Stage(enum.StrEnum):
    """Where a service stands on its ladder (order matters: see ``stages.py``)."""

    MONOLITH = "monolith"
    SHADOW = "shadow"
    CANARY = "canary"
    SERVICE = "service"
    RETIRED = "retired"

    @property
    def rank(self) -> int:
        return _STAGE_RANK[self]


_STAGE_RANK = {stage: i for i, stage in enumerate(Stage)}


@dataclass(frozen=True, slots=True)
class Upstream:
    """One upstream base URL, e.g. ``Upstream("http://127.0.0.1:8101", connect_timeout=1)``."""

    url: str
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        if parts.port is not None:
            return parts.port
        return 443 if parts.scheme == "https" else 80

    @property
    def base_path(self) -> str:
        """Path prefix to prepend to forwarded paths ('' for a bare origin)."""
        return urlsplit(self.url).path.rstrip("/")


class CohortSourceKind(enum.StrEnum):
    HEADER = "header"
    COOKIE = "cookie"
    QUERY = "query"
    CLIENT = "client"


@dataclass(frozen=True, slots=True)
class CohortSource:
    """Where the cohort key comes from: ``header:X-Customer-Id``, ``cookie:sid``,
    ``query:customer``, or ``client`` (the client address)."""

    kind: CohortSourceKind
    name: str = ""

    def __str__(self) -> str:
        return (
            self.kind.value if self.kind is CohortSourceKind.CLIENT else f"{self.kind}:{self.name}"
        )


@dataclass(frozen=True, slots=True)
class CanaryPolicy:
    steps: tuple[float, ...] = (1.0, 10.0, 50.0)
    percent: float | None = None
    cohort: CohortSource | None = None


@dataclass(frozen=True, slots=True)
class ShadowPolicy:
    """``writes='off'`` mirrors only safe methods; ``'dry-run'`` mirrors writes too, with
    the dry-run header services honour by rolling back."""

    sample: float = 1.0
    writes: str = "off"
    ignore: tuple[str, ...] = ()
    noise_sample: float = 0.0
    compare: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class FallbackPolicy:
    """Retry on the monolith when the service fails in one of the ``on`` ways
    (``connect_error``, ``timeout``, ``5xx``); ``breaker_failures`` consecutive failures
    open the circuit for ``breaker_reset_s`` before a half-open probe."""

    to: str = "monolith"
    on: frozenset[str] = frozenset({"connect_error", "timeout", "5xx"})
    breaker_failures: int = 5
    breaker_reset_s: float = 10.0


@dataclass(frozen=True, slots=True)
class DataPolicy:
    """``tables``: monolith table -> service table, synced monolith -> service.
    ``owned``: those of ``tables`` the service writes; their changes in the service are
    synced back to the monolith (two-way), the rest are read-only copies in the service.
    ``owner``: who is the system of record; ``service`` stops capturing the owned tables
    in the monolith (the monolith no longer writes them)."""

    owner: str = "monolith"
    tables: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    owned: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    """A path template with a method set, e.g. ``/api/orders/{id}`` for GET and PATCH.

    ``{name}`` matches one non-empty path segment (never ``.`` or ``..``);
    ``{name:path}`` as the last segment matches the rest of the path. A trailing slash
    on the request is ignored for matching. ``matcher`` holds the compiled segments.
    """

    path_template: str
    methods: frozenset[str]
    service: str
    segments: tuple[tuple[int, str], ...]
    shadow_ignore: tuple[str, ...] | None = None
    shadow_compare: Mapping[str, Any] | None = None
    specificity: tuple[int, ...] = field(init=False)
    """Larger is more specific: literal beats parameter beats catch-all, segment by
    segment from the left, and longer beats shorter."""

    # segment kinds, also their specificity rank
    CATCH_ALL = 0
    PARAM = 1
    LITERAL = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "specificity", tuple(kind for kind, _ in self.segments))

    @property
    def index_key(self) -> tuple[str | None, int]:
        """Where ``Plan.route_index`` files this route."""
        first: str | None = None
        if self.segments and self.segments[0][0] == Route.LITERAL:
            first = self.segments[0][1]
        if self.segments and self.segments[-1][0] == Route.CATCH_ALL:
            return first, -1
        return first, len(self.segments)

    @property
    def shape(self) -> tuple[tuple[int, str], ...]:
        """The template with parameter names erased: equal shapes match the same paths."""
        return tuple((k, v if k == Route.LITERAL else "") for k, v in self.segments)

    def match(self, parts: tuple[str, ...]) -> dict[str, str] | None:
        """Match decoded path segments; returns parameters or None."""
        segments = self.segments
        params: dict[str, str] = {}
        n = len(segments)
        for i, (kind, value) in enumerate(segments):
            if kind == Route.CATCH_ALL:
                rest = parts[i:]
                if not rest or any(p in ("", ".", "..") for p in rest):
                    return None
                params[value] = "/".join(rest)
                return params
            if i >= len(parts):
                return None
            part = parts[i]
            if kind == Route.LITERAL:
                if part != value:
                    return None
            elif part in ("", ".", ".."):
                return None
            else:
                params[value] = part
        return params if len(parts) == n else None

    def __repr__(self) -> str:
        return f"Route({self.path_template!r}, {sorted(self.methods)}, service={self.service!r})"


@dataclass(frozen=True, slots=True)
class ServicePlan:
    name: str
    upstreams: tuple[Upstream, ...]
    routes: tuple[Route, ...]
    stage: Stage
    canary: CanaryPolicy
    shadow: ShadowPolicy
    fallback: FallbackPolicy | None
    requires: tuple[str, ...]
    gates: Mapping[str, float]
    data: DataPolicy
    salt: str

    @property
    def upstream(self) -> Upstream:
        return self.upstreams[0]


@dataclass(frozen=True, slots=True)
class CohortCookie:
    """The cookie that keeps anonymous clients in their cohort."""

    name: str = "strangler_cohort"
    max_age_s: int = 365 * 24 * 3600
    secure: bool = False
    """Add the ``Secure`` attribute (set it when clients reach the proxy over https)."""


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """Proxy-wide knobs from the plan's optional ``proxy:`` section."""

    preserve_host: bool = True
    max_header_bytes: int = 64 * 1024
    max_body_bytes: int = 100 * 1024 * 1024
    shadow_queue: int = 1000
    cohort_cookie: CohortCookie = CohortCookie()


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in a plan: ``level`` is ``error`` or ``warning``.

    ``str()`` gives ``migration_plan.yaml:14: services.orders.canary.percent: must be 0..100``.
    """

    source: str
    line: int | None
    path: str
    message: str
    level: str = "error"

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "line": self.line,
            "path": self.path,
            "message": self.message,
            "level": self.level,
        }


@dataclass(frozen=True, slots=True, eq=False)
class Plan:
    version: int
    monolith: Upstream
    services: Mapping[str, ServicePlan]
    proxy: ProxySettings
    kafka: Mapping[str, Any]
    shadow_store: Mapping[str, Any]
    cdc: Mapping[str, Any]
    audit_history: str | None = None
    """``audit.history``: where the stage-change history goes (relative to the plan)."""
    source: str = "<plan>"
    routes: tuple[Route, ...] = ()
    """Every route of every service, most specific first."""
    route_index: Mapping[tuple[str | None, int], tuple[Route, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """``routes`` grouped by (literal first segment or None, segment count or -1 for a
    trailing ``{name:path}``), each group most specific first."""
    warnings: tuple[Finding, ...] = ()
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    """Values derived from this plan and cached by ``routing`` (not part of the plan)."""

    def upstream_urls(self) -> frozenset[str]:
        """Every upstream the proxy may forward to (nothing else is ever contacted)."""
        urls = {self.monolith.url}
        for service in self.services.values():
            urls.update(u.url for u in service.upstreams)
        return frozenset(urls)


def freeze(value: Any) -> Any:
    """Deep read-only copy: dicts become ``MappingProxyType``, lists become tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Inverse of :func:`freeze`: plain dicts and lists (for code that wants JSON types)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value
