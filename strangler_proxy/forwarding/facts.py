"""Request facts for ``decide()`` built cheaply from an ASGI scope.

``RequestFacts.from_asgi`` decodes every header into a dict; most requests are decided
on method and path alone, so here headers are looked up lazily, and the shadow roll and
a new cohort id are only computed when the plan has a service that can use them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from strangler_proxy.cohort import new_cohort_id, sample_roll
from strangler_proxy.forwarding.headers import Header
from strangler_proxy.plan.model import Plan, Stage
from strangler_proxy.routing import RequestFacts


class LazyHeaders(Mapping[str, str]):
    """Lower-case name → value (repeats joined like ``from_asgi``), decoded on access."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Sequence[Header]) -> None:
        self._raw = raw

    def __getitem__(self, key: str) -> str:
        name = key.lower().encode("latin-1")
        found = [v.decode("latin-1") for n, v in self._raw if n == name]
        if not found:
            raise KeyError(key)
        return ("; " if name == b"cookie" else ", ").join(found)

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for n, _ in self._raw:
            seen.setdefault(n.decode("latin-1"), None)
        return iter(seen)

    def __len__(self) -> int:
        return len({n for n, _ in self._raw})


@dataclass(frozen=True, slots=True)
class PlanNeeds:
    shadow: bool  # some service is in shadow: decide() needs the sample roll
    canary: bool  # some service is in canary: decide() may hand out a cohort id

    @classmethod
    def of(cls, plan: Plan) -> PlanNeeds:
        stages = {s.stage for s in plan.services.values()}
        return cls(Stage.SHADOW in stages, Stage.CANARY in stages)


def facts_from_parts(
    method: str,
    raw_path: bytes,
    query: bytes,
    headers: Sequence[Header],
    client: str | None,
    request_id: str,
    needs: PlanNeeds,
) -> RequestFacts:
    """The same facts as :func:`request_facts`, from the fast path's parsed request."""
    return RequestFacts(
        method=method,
        path=raw_path.decode("latin-1"),
        headers=LazyHeaders(headers),
        query_string=query.decode("latin-1") if query else "",
        client=client,
        sample_roll=sample_roll(request_id) if needs.shadow else 0.0,
        new_cohort_id=new_cohort_id() if needs.canary else None,
    )


def request_facts(scope: Mapping[str, object], request_id: str, needs: PlanNeeds) -> RequestFacts:
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else str(scope["path"])
    client = scope.get("client")
    query = scope.get("query_string", b"")
    return RequestFacts(
        method=str(scope["method"]),
        path=path,
        headers=LazyHeaders(scope["headers"]),  # type: ignore[arg-type]
        query_string=query.decode("latin-1") if isinstance(query, bytes) else "",
        client=client[0] if isinstance(client, tuple | list) else None,
        sample_roll=sample_roll(request_id) if needs.shadow else 0.0,
        new_cohort_id=new_cohort_id() if needs.canary else None,
    )
