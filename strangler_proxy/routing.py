"""``decide(plan, facts) -> Decision``: where one request goes. Pure.

No clock, no randomness, no I/O: everything that varies comes in through
:class:`RequestFacts` — including the shadow ``sample_roll`` (derive it from the request
id with :func:`strangler_proxy.cohort.sample_roll`) and ``new_cohort_id`` (a random id
the caller generates, used only when an anonymous client must be given a cohort).

Matching: the path is split on ``/`` and each segment percent-decoded *for matching
only* (what is forwarded is the original bytes). Routes are tried most specific first
(literal segments beat parameters, longer beats shorter); a route whose method set
lacks the request method does not match. Nothing matched → the monolith.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast
from urllib.parse import parse_qs, unquote

from strangler_proxy.cohort import bucket as cohort_bucket
from strangler_proxy.plan.model import (
    SAFE_METHODS,
    CohortCookie,
    CohortSourceKind,
    FallbackPolicy,
    Plan,
    Route,
    ServicePlan,
    Stage,
    Upstream,
)

__all__ = [
    "IDEMPOTENT_METHODS",
    "AsgiHeaders",
    "Decision",
    "RequestFacts",
    "SetCookie",
    "decide",
    "match_route",
    "parse_cookies",
    "split_path",
]

IDEMPOTENT_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_EMPTY: Mapping[str, str] = MappingProxyType({})


class AsgiHeaders(Mapping[str, str]):
    """Read-only lowercase-name view of ASGI ``[(name, value), ...]`` header pairs.

    Nothing is decoded until asked for: routing usually reads one header or none.
    Repeated headers are joined with ``, `` (``; `` for ``cookie``).
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        self._raw = raw if isinstance(raw, list | tuple) else list(raw)

    def __getitem__(self, name: str) -> str:
        key = name.lower().encode("latin-1")
        found: list[str] = []
        for k, v in self._raw:
            if k == key or (k.lower() == key):
                found.append(v.decode("latin-1"))
        if not found:
            raise KeyError(name)
        return ("; " if key == b"cookie" else ", ").join(found)

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for k, _ in self._raw:
            name = k.decode("latin-1").lower()
            if name not in seen:
                seen.add(name)
                yield name

    def __len__(self) -> int:
        return len({k.lower() for k, _ in self._raw})


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What ``decide`` may know about a request.

    ``path`` is the request path as received (percent-encoded, no query string).
    ``headers`` maps lowercase names to values. ``cookies`` may be given pre-parsed;
    when None they are parsed from the ``cookie`` header, only if a decision needs them.
    ``query_string`` is raw, without ``?``. ``client`` is the client address.
    """

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    cookies: Mapping[str, str] | None = None
    query_string: str = ""
    client: str | None = None
    sample_roll: float = 0.0
    new_cohort_id: str | None = None

    @classmethod
    def from_asgi(
        cls,
        scope: Mapping[str, Any],
        *,
        sample_roll: float = 0.0,
        new_cohort_id: str | None = None,
    ) -> RequestFacts:
        """Facts from an ASGI HTTP scope (uses ``raw_path`` when the server gives it)."""
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1").partition("?")[0] if raw_path else scope["path"]
        headers = AsgiHeaders(scope.get("headers", ()))
        client = scope.get("client")
        return cls(
            method=scope["method"],
            path=path,
            headers=headers,
            query_string=scope.get("query_string", b"").decode("latin-1"),
            client=client[0] if client else None,
            sample_roll=sample_roll,
            new_cohort_id=new_cohort_id,
        )

    def cookie(self, name: str) -> str | None:
        cookies = (
            self.cookies
            if self.cookies is not None
            else parse_cookies(self.headers.get("cookie", ""))
        )
        return cookies.get(name)

    def query(self, name: str) -> str | None:
        values = parse_qs(self.query_string, keep_blank_values=False).get(name)
        return values[0] if values else None


@dataclass(frozen=True, slots=True)
class SetCookie:
    """A cohort cookie the response must carry so an anonymous client stays sticky."""

    name: str
    value: str
    max_age_s: int
    secure: bool = False

    def header_value(self) -> str:
        """The ``Set-Cookie`` header value."""
        value = (
            f"{self.name}={self.value}; Max-Age={self.max_age_s}; Path=/; HttpOnly; SameSite=Lax"
        )
        return value + "; Secure" if self.secure else value


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a request goes.

    ``target`` is the upstream that answers the client (``target_name`` is ``monolith``
    or the service name, for metrics). If it fails in one of the ``fallback_on`` ways
    (``connect_error``, ``timeout``, ``5xx``), retry on ``fallback`` (the monolith);
    ``fallback_on`` already excludes ``timeout``/``5xx`` for non-idempotent methods.
    ``shadow`` is an upstream to mirror the request to (the client never waits for
    it); ``mirror_write`` says the mirrored request is a write that must carry the
    dry-run header; ``noise_sample`` asks for a second monolith call to measure noise.
    ``set_cookie`` must be added to the response. ``bucket`` is the cohort bucket used
    (canary only).
    """

    target: Upstream
    target_name: str = "monolith"
    service: str | None = None
    route: Route | None = None
    stage: Stage | None = None
    fallback: Upstream | None = None
    fallback_on: frozenset[str] = frozenset()
    fallback_policy: FallbackPolicy | None = None
    shadow: Upstream | None = None
    shadow_name: str | None = None
    mirror_write: bool = False
    noise_sample: bool = False
    set_cookie: SetCookie | None = None
    bucket: float | None = None
    cohort_key_source: str | None = None

    @property
    def to_service(self) -> bool:
        return self.target_name != "monolith"


def parse_cookies(header: str) -> Mapping[str, str]:
    """``a=1; b="2"`` → ``{"a": "1", "b": "2"}``, leniently, as browsers send them
    (RFC 6265 §5.4); the first of repeated names wins, malformed pairs are skipped."""
    if not header:
        return _EMPTY
    out: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name or name in out:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        out[name] = value
    return out


def split_path(path: str) -> tuple[str, ...]:
    """``/api/a%20b/`` → ``("api", "a b")``: decoded segments, trailing slash ignored."""
    if path.startswith("/"):
        path = path[1:]
    if path.endswith("/"):
        path = path[:-1]
    if not path:
        return ()
    parts = path.split("/")
    if "%" in path:
        return tuple(unquote(p, errors="surrogateescape") for p in parts)
    return tuple(parts)


def match_route(plan: Plan, method: str, path: str) -> tuple[Route, Mapping[str, str]] | None:
    """The most specific route matching method and path, with its parameters."""
    parts = split_path(path)
    index = plan.route_index
    if parts:
        first = parts[0]
        n = len(parts)
        keys: tuple[tuple[str | None, int], ...] = ((first, n), (None, n), (first, -1), (None, -1))
    else:
        keys = ((None, 0), (None, -1))
    best: tuple[Route, Mapping[str, str]] | None = None
    for key in keys:
        group = index.get(key)
        if group is None:
            continue
        for route in group:  # most specific first: the first match is the group's best
            if method in route.methods:
                params = route.match(parts)
                if params is not None:
                    if best is None or route.specificity > best[0].specificity:
                        best = (route, params)
                    break
    return best


def decide(plan: Plan, facts: RequestFacts) -> Decision:
    method = facts.method.upper()
    found = match_route(plan, method, facts.path)
    memo = plan.memo
    if found is None:
        unmatched = memo.get(None)
        if unmatched is None:
            unmatched = memo[None] = Decision(target=plan.monolith)
        return cast(Decision, unmatched)
    route = found[0]
    service = plan.services[route.service]
    stage = service.stage
    pick = _pick(service, facts.sample_roll)
    if stage is Stage.CANARY:
        return _canary(plan, service, route, facts, method, pick)
    # every other stage depends only on the route, the method's kind and the sample roll
    if stage is Stage.SHADOW:
        policy = service.shadow
        roll = facts.sample_roll
        safe = method in SAFE_METHODS
        if roll >= policy.sample or not (safe or policy.writes == "dry-run"):
            variant = 0
        elif safe and roll < policy.sample * policy.noise_sample:
            variant = 3
        else:
            variant = 1 if safe else 2
        key: tuple[Any, ...] = (route, pick, variant)
    elif stage is Stage.SERVICE:
        key = (route, pick, method in IDEMPOTENT_METHODS)
    else:
        key = (route, pick)
    cached = memo.get(key)
    if cached is None:
        cached = memo[key] = _build(plan, service, route, key)
    return cast(Decision, cached)


def _pick(service: ServicePlan, roll: float) -> int:
    """Which of the service's upstreams serves this request: spread evenly by the
    request's roll, using its fine digits so the choice does not correlate with the
    shadow sample (``roll < sample``)."""
    n = len(service.upstreams)
    return 0 if n == 1 else int(roll * 1_000_003) % n


def _build(plan: Plan, service: ServicePlan, route: Route, key: tuple[Any, ...]) -> Decision:
    stage = service.stage
    base: dict[str, Any] = {"service": service.name, "route": route, "stage": stage}
    upstream = service.upstreams[key[1]]
    if stage is Stage.MONOLITH:
        return Decision(target=plan.monolith, **base)
    if stage is Stage.SHADOW:
        variant = key[2]
        if variant == 0:
            return Decision(target=plan.monolith, **base)
        return Decision(
            target=plan.monolith,
            shadow=upstream,
            shadow_name=service.name,
            mirror_write=variant == 2,
            noise_sample=variant == 3,
            **base,
        )
    if stage is Stage.SERVICE:
        return _on_service(plan, service, upstream, key[2], base)
    return Decision(target=upstream, target_name=service.name, **base)


def _on_service(
    plan: Plan, service: ServicePlan, upstream: Upstream, idempotent: bool, base: dict[str, Any]
) -> Decision:
    policy = service.fallback
    if policy is None:
        return Decision(target=upstream, target_name=service.name, **base)
    on = policy.on if idempotent else policy.on & {"connect_error"}
    return Decision(
        target=upstream,
        target_name=service.name,
        fallback=plan.monolith if on else None,
        fallback_on=on,
        fallback_policy=policy,
        **base,
    )


def _canary(
    plan: Plan, service: ServicePlan, route: Route, facts: RequestFacts, method: str, pick: int
) -> Decision:
    base: dict[str, Any] = {"service": service.name, "route": route, "stage": Stage.CANARY}
    key, source, set_cookie = _cohort_key(plan.proxy.cohort_cookie, service, facts)
    if key is None:
        # no key and no id to hand out: keep the client where nothing can surprise it
        return Decision(target=plan.monolith, **base)
    b = cohort_bucket(service.salt, key)
    percent = service.canary.percent or 0.0
    base.update(bucket=b, set_cookie=set_cookie, cohort_key_source=source)
    if b < percent / 100.0:
        upstream = service.upstreams[pick]
        return _on_service(plan, service, upstream, method in IDEMPOTENT_METHODS, base)
    return Decision(target=plan.monolith, **base)


def _cohort_key(
    cookie: CohortCookie, service: ServicePlan, facts: RequestFacts
) -> tuple[str | None, str | None, SetCookie | None]:
    source = service.canary.cohort
    if source is not None:
        if source.kind is CohortSourceKind.HEADER:
            value = facts.headers.get(source.name)
        elif source.kind is CohortSourceKind.COOKIE:
            value = facts.cookie(source.name)
        elif source.kind is CohortSourceKind.QUERY:
            value = facts.query(source.name)
        else:
            value = facts.client
        if value:
            return value, str(source), None
    existing = facts.cookie(cookie.name)
    if existing:
        return existing, f"cookie:{cookie.name}", None
    if facts.new_cohort_id:
        new = SetCookie(cookie.name, facts.new_cohort_id, cookie.max_age_s, cookie.secure)
        return facts.new_cohort_id, f"cookie:{cookie.name}", new
    return None, None, None
