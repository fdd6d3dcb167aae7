from __future__ import annotations

from strangler_proxy.forwarding.facts import LazyHeaders, PlanNeeds, request_facts
from strangler_proxy.plan.parse import parse_plan
from strangler_proxy.routing import RequestFacts, decide

PLAN = """
version: 1
monolith: {url: "http://127.0.0.1:1"}
services:
  catalog:
    url: "http://127.0.0.1:2"
    routes: [{path: "/api/products/{id}", methods: [GET]}]
    stage: canary
    canary: {percent: 50, cohort: "header:X-Customer-Id"}
"""

SCOPE = {
    "type": "http",
    "method": "GET",
    "path": "/api/products/1",
    "raw_path": b"/api/products/1",
    "query_string": b"a=1",
    "headers": [(b"x-customer-id", b"c-1"), (b"cookie", b"a=1"), (b"cookie", b"b=2")],
    "client": ("10.0.0.9", 5000),
}


def test_lazy_headers_match_from_asgi() -> None:
    lazy = LazyHeaders(SCOPE["headers"])  # type: ignore[arg-type]
    eager = RequestFacts.from_asgi(SCOPE).headers
    assert dict(lazy) == dict(eager)
    assert lazy["Cookie"] == eager["cookie"] == "a=1; b=2"
    assert lazy.get("missing") is None and len(lazy) == 2


def test_request_facts_decide_like_from_asgi() -> None:
    plan = parse_plan(PLAN)
    needs = PlanNeeds.of(plan)
    assert needs.canary and not needs.shadow
    for customer in (b"c-1", b"c-2", b"c-3", b"c-4"):
        scope = {**SCOPE, "headers": [(b"x-customer-id", customer)]}
        ours = decide(plan, request_facts(scope, "rid", needs))
        ref = decide(plan, RequestFacts.from_asgi(scope, new_cohort_id="x"))
        assert (ours.target_name, ours.bucket) == (ref.target_name, ref.bucket)
    facts = request_facts(SCOPE, "rid", PlanNeeds(shadow=False, canary=False))
    assert facts.new_cohort_id is None and facts.sample_roll == 0.0
    assert facts.client == "10.0.0.9" and facts.query_string == "a=1"
