"""The fast path's request triage and decision cache (no sockets; the connection-level
behaviour is in tests/integration/test_proxy_fastpath.py)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from strangler_proxy.forwarding.fastpath import Exchange, FastPath, fixed_by_route
from strangler_proxy.forwarding.handler import Handler
from strangler_proxy.forwarding.mirror import Mirror
from strangler_proxy.metrics import ProxyMetrics
from strangler_proxy.plan import Plan, parse_plan
from strangler_proxy.routing import RequestFacts, decide

PLAN = """
version: 1
monolith: {url: "http://127.0.0.1:8000"}
proxy: {max_header_bytes: 4096, max_body_bytes: 100000}
services:
  orders:
    url: http://127.0.0.1:8101
    routes: [{path: "/api/orders/{id}", methods: [GET, POST]}]
    stage: canary
    canary: {percent: 50, cohort: "header:X-Customer-Id"}
  catalog:
    url: http://127.0.0.1:8102
    routes: [{path: "/api/catalog/{id}", methods: [GET]}]
    stage: service
    fallback: {to: monolith, on: [connect_error, 5xx]}
  reviews:
    url: http://127.0.0.1:8103
    routes: [{path: "/api/reviews", methods: [GET]}]
    stage: shadow
    shadow: {sample: 0.5}
  wishlist:
    url: http://127.0.0.1:8106
    routes: [{path: "/api/wishlist", methods: [GET, POST]}]
    stage: shadow
  compare:
    url: http://127.0.0.1:8107
    routes: [{path: "/api/compare", methods: [GET]}]
    stage: shadow
    shadow: {sample: 1.0, noise_sample: 0.5}
  search:
    url: [http://127.0.0.1:8104, http://127.0.0.1:8105]
    routes: [{path: "/api/search", methods: [GET]}]
    stage: service
"""


def fast_path(plan: Plan) -> FastPath:
    handler = Handler(lambda: plan, metrics=ProxyMetrics(), mirror=Mirror())
    return FastPath(handler, lambda: plan, "/_strangler/")


def ask(fast: FastPath, target: bytes, headers: list[tuple[bytes, bytes]] | None = None,
        method: bytes = b"GET") -> Exchange | None:
    hs = [(b"host", b"shop")] if headers is None else headers
    if not any(name == b"host" for name, _ in hs) and headers != []:
        hs = [(b"host", b"shop"), *hs]
    size = sum(len(n) + len(v) + 4 for n, v in hs)
    client: Any = object()
    return fast.exchange(client, method, target, hs, size, True, b"10.0.0.1", "10.0.0.1",
                         b"http")


def test_requests_the_asgi_handler_must_answer_are_refused() -> None:
    fast = fast_path(parse_plan(PLAN))
    assert ask(fast, b"/_strangler/status") is None
    assert ask(fast, b"/%5Fstrangler/metrics") is None
    assert ask(fast, b"*", method=b"OPTIONS") is None
    assert ask(fast, b"/upload", [(b"transfer-encoding", b"chunked")], b"POST") is None
    assert ask(fast, b"/upload", [(b"content-length", b"70000")], b"POST") is None  # > buffer
    assert ask(fast, b"/upload", [(b"content-length", b"abc")], b"POST") is None  # → 400
    assert ask(fast, b"/x", [(b"x-big", b"y" * 5000)]) is None  # → 431
    assert ask(fast, b"/x", []) is None  # no Host: the handler answers by HTTP version
    assert ask(fast, b"/x", [(b"host", b"a"), (b"host", b"b")]) is None  # → 400
    ok = ask(fast, b"/upload", [(b"content-length", b"100")], b"POST")
    assert ok is not None and ok.decision.target_name == "monolith"
    assert fast.handler.metrics.paths["fast"] == 1


def test_absolute_form_target_keeps_only_its_path() -> None:
    ex = ask(fast_path(parse_plan(PLAN)), b"http://169.254.169.254/api/catalog/1?x=%20")
    assert ex is not None and ex.path_qs == b"/api/catalog/1?x=%20"
    assert ex.decision.target_name == "catalog"


def test_canary_decisions_follow_the_cohort_not_the_cache() -> None:
    plan = parse_plan(PLAN)
    fast = fast_path(plan)
    sides = set()
    for customer in range(40):
        ex = ask(fast, b"/api/orders/7", [(b"x-customer-id", str(customer).encode())])
        assert ex is not None
        sides.add(ex.decision.target_name)
    assert sides == {"orders", "monolith"}


def test_route_fixed_decisions_are_cached_per_method_and_path() -> None:
    plan = parse_plan(PLAN)
    fast = fast_path(plan)
    first = ask(fast, b"/api/catalog/1?a=1")
    second = ask(fast, b"/api/catalog/1?b=2")
    assert first is not None and second is not None and first.decision is second.decision
    assert first.decision.fallback is not None
    sampled = ask(fast, b"/api/reviews")
    spread = ask(fast, b"/api/search")
    assert sampled is not None and not fixed_by_route(plan, sampled.decision)
    assert spread is not None and not fixed_by_route(plan, spread.decision)
    everything = ask(fast, b"/api/wishlist")  # sample 1.0: every request is mirrored
    assert everything is not None and fixed_by_route(plan, everything.decision)
    assert everything.decision.shadow is not None
    primary, shadow = fast.targets(everything.decision)
    assert primary.name == "monolith" and shadow is not None and shadow.name == "wishlist"
    assert fast.targets(everything.decision)[1] is shadow


@given(
    path=st.sampled_from(["/api/orders/1", "/api/catalog/2", "/api/reviews", "/api/search",
                          "/api/wishlist", "/api/compare", "/elsewhere", "/api/catalog/2/x"]),
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    customer=st.none() | st.text(min_size=1, max_size=8),
    roll=st.floats(min_value=0.0, max_value=0.999999),
)
def test_a_decision_judged_fixed_is_what_decide_gives_any_request(
    path: str, method: str, customer: str | None, roll: float
) -> None:
    plan = parse_plan(PLAN)
    plain = decide(plan, RequestFacts(method, path, sample_roll=0.25, new_cohort_id="c"))
    if not fixed_by_route(plan, plain):
        return
    headers = {"x-customer-id": customer} if customer else {}
    other = decide(plan, RequestFacts(method, path, headers=headers, sample_roll=roll,
                                      new_cohort_id="other", client="10.9.9.9"))
    assert other == plain
