from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strangler_proxy.cohort import bucket
from strangler_proxy.plan import Plan, Stage, parse_plan
from strangler_proxy.routing import Decision, RequestFacts, decide, match_route, split_path

MONOLITH = "http://127.0.0.1:8000"
SVC = "http://127.0.0.1:8101"


def make_plan(
    stage: str = "service",
    *,
    percent: float = 10,
    cohort: str = "header:X-Customer-Id",
    shadow: str = "{sample: 0.5, writes: 'off', noise_sample: 0.5}",
    fallback: str = "{to: monolith, on: [connect_error, timeout, 5xx]}",
    proxy: str = "",
) -> Plan:
    return parse_plan(
        f"""
version: 1
monolith: {{url: "{MONOLITH}"}}
{proxy}
services:
  notifications:
    url: {SVC}
    routes:
      - {{path: /api/notifications, methods: [GET, POST]}}
      - {{path: "/api/notifications/{{id}}", methods: [GET, PATCH]}}
      - {{path: /api/notifications/templates, methods: [GET]}}
    stage: {stage}
    canary: {{percent: {percent}, cohort: "{cohort}"}}
    shadow: {shadow}
    fallback: {fallback}
  catalog:
    url: http://127.0.0.1:8102
    routes:
      - {{path: "/api/{{rest:path}}", methods: [GET]}}
      - {{path: "/api/catalog/{{kind}}/{{id}}", methods: [GET, DELETE]}}
      - {{path: /api/catalog/products/featured, methods: [GET]}}
    stage: service
"""
    )


def go(plan: Plan, method: str, path: str, **kw: object) -> Decision:
    return decide(plan, RequestFacts(method, path, **kw))  # type: ignore[arg-type]


def test_unmatched_goes_to_the_monolith() -> None:
    plan = make_plan()
    for method, path in [("GET", "/"), ("GET", "/healthz"), ("POST", "/api"), ("GET", "/apix")]:
        d = go(plan, method, path)
        assert d.target.url == MONOLITH and d.service is None and d.route is None
        assert d.target_name == "monolith" and not d.to_service


def test_most_specific_route_wins() -> None:
    plan = make_plan()
    d = go(plan, "GET", "/api/notifications/templates")
    assert d.route is not None and d.route.path_template == "/api/notifications/templates"
    d = go(plan, "GET", "/api/notifications/7")
    assert d.route is not None and d.route.path_template == "/api/notifications/{id}"
    # literal beats parameter, parameter beats catch-all, longer beats shorter
    d = go(plan, "GET", "/api/catalog/products/featured")
    assert d.route is not None and d.route.path_template == "/api/catalog/products/featured"
    d = go(plan, "GET", "/api/catalog/products/9")
    assert d.route is not None and d.route.path_template == "/api/catalog/{kind}/{id}"
    d = go(plan, "GET", "/api/catalog/products/9/reviews")
    assert d.route is not None and d.route.path_template == "/api/{rest:path}"
    found = match_route(plan, "GET", "/api/catalog/products/9/reviews")
    assert found is not None and found[1] == {"rest": "catalog/products/9/reviews"}
    found = match_route(plan, "GET", "/api/catalog/products/9")
    assert found is not None and found[1] == {"kind": "products", "id": "9"}


def test_method_outside_the_route_set_does_not_match() -> None:
    plan = make_plan()
    # DELETE on notifications: no route has it → monolith
    assert go(plan, "DELETE", "/api/notifications/7").service is None
    # PATCH on a catch-all-only path: the GET-only catch-all does not match
    assert go(plan, "PATCH", "/api/other").service is None
    # a less specific route that allows the method still matches
    d = go(plan, "DELETE", "/api/catalog/products/featured")
    assert d.route is not None and d.route.path_template == "/api/catalog/{kind}/{id}"
    # GET routes also take HEAD; method case is normalised
    assert go(plan, "HEAD", "/api/notifications").service == "notifications"
    assert go(plan, "get", "/api/notifications").service == "notifications"


def test_percent_decoding_is_for_matching_only() -> None:
    plan = make_plan()
    facts = RequestFacts("GET", "/api/%6Eotifications/a%2Fb")
    d = decide(plan, facts)
    assert d.route is not None and d.route.path_template == "/api/notifications/{id}"
    found = match_route(plan, "GET", facts.path)
    assert found is not None and found[1] == {"id": "a/b"}  # an encoded slash stays in place
    assert facts.path == "/api/%6Eotifications/a%2Fb"
    assert split_path("/a%20b/c/") == ("a b", "c")
    assert split_path("/") == ()


def test_trailing_slash_and_dot_segments() -> None:
    plan = make_plan()
    assert go(plan, "GET", "/api/notifications/").service == "notifications"
    for path in ["/api/notifications/..", "/api/notifications/%2e%2e", "/api/notifications//"]:
        assert go(plan, "GET", path).service is None, path
    assert go(plan, "GET", "/api/x/../y").service is None  # catch-all refuses dot segments


def test_stage_monolith_keeps_everything_on_the_monolith() -> None:
    d = go(make_plan("monolith"), "GET", "/api/notifications")
    assert d.service == "notifications" and d.stage is Stage.MONOLITH
    assert d.target.url == MONOLITH and d.shadow is None and d.fallback is None


def test_stage_shadow_mirrors_a_sample_of_safe_requests() -> None:
    plan = make_plan("shadow")  # sample 0.5, writes off, noise_sample 0.5
    d = go(plan, "GET", "/api/notifications", sample_roll=0.1)
    assert d.target.url == MONOLITH
    assert d.shadow is not None and d.shadow.url == SVC and d.shadow_name == "notifications"
    assert not d.mirror_write
    assert d.noise_sample  # 0.1 < 0.5 * 0.5
    d = go(plan, "GET", "/api/notifications", sample_roll=0.3)
    assert d.shadow is not None and not d.noise_sample
    assert go(plan, "GET", "/api/notifications", sample_roll=0.5).shadow is None
    assert go(plan, "GET", "/api/notifications", sample_roll=0.99).shadow is None
    # writes: off → a POST is never mirrored
    assert go(plan, "POST", "/api/notifications", sample_roll=0.0).shadow is None


def test_stage_shadow_dry_run_mirrors_writes_marked_as_such() -> None:
    plan = make_plan("shadow", shadow="{sample: 1.0, writes: dry-run, noise_sample: 1.0}")
    d = go(plan, "POST", "/api/notifications", sample_roll=0.999)
    assert d.target.url == MONOLITH and d.shadow is not None
    assert d.mirror_write and not d.noise_sample  # writes are never replayed on the monolith
    d = go(plan, "GET", "/api/notifications", sample_roll=0.999)
    assert d.shadow is not None and not d.mirror_write and d.noise_sample


def test_stage_service_with_fallback_policy() -> None:
    plan = make_plan("service")
    d = go(plan, "GET", "/api/notifications/1")
    assert d.target.url == SVC and d.target_name == "notifications" and d.to_service
    assert d.fallback is not None and d.fallback.url == MONOLITH
    assert d.fallback_on == {"connect_error", "timeout", "5xx"}
    assert d.fallback_policy is not None and d.fallback_policy.breaker_failures == 5
    # a write is only retried when it certainly never reached the service
    d = go(plan, "POST", "/api/notifications")
    assert d.fallback_on == {"connect_error"} and d.fallback is not None
    d = go(make_plan("service", fallback="{on: [5xx]}"), "PATCH", "/api/notifications/1")
    assert d.fallback is None and d.fallback_on == frozenset()
    d = go(make_plan("service", fallback="off"), "GET", "/api/notifications/1")
    assert d.target.url == SVC and d.fallback is None


def test_stage_retired_never_falls_back() -> None:
    d = go(make_plan("retired"), "GET", "/api/notifications")
    assert d.target.url == SVC and d.fallback is None and d.stage is Stage.RETIRED


def _customers_on_service(plan: Plan, n: int = 400) -> set[str]:
    on = set()
    for i in range(n):
        d = go(plan, "GET", "/api/notifications", headers={"x-customer-id": f"c{i}"})
        assert d.set_cookie is None  # the header is the key; no cookie needed
        assert d.bucket == bucket("notifications", f"c{i}")
        if d.to_service:
            on.add(f"c{i}")
    return on


def test_canary_is_sticky_and_raising_the_percent_only_adds_cohorts() -> None:
    at10 = _customers_on_service(make_plan("canary", percent=10))
    assert at10 == _customers_on_service(make_plan("canary", percent=10))  # sticky
    at50 = _customers_on_service(make_plan("canary", percent=50))
    assert at10 < at50
    assert 20 < len(at10) < 60 and 160 < len(at50) < 240
    assert _customers_on_service(make_plan("canary", percent=0)) == set()
    assert len(_customers_on_service(make_plan("canary", percent=100))) == 400


def test_canary_on_service_carries_the_fallback_policy() -> None:
    plan = make_plan("canary", percent=100)
    d = go(plan, "GET", "/api/notifications", headers={"x-customer-id": "c1"})
    assert d.to_service and d.fallback is not None and d.cohort_key_source == "header:x-customer-id"


def test_anonymous_client_gets_a_cohort_cookie_and_stays_sticky() -> None:
    plan = make_plan("canary", percent=50)
    first = go(plan, "GET", "/api/notifications", new_cohort_id="abc123")
    assert first.set_cookie is not None
    assert first.set_cookie.name == "strangler_cohort" and first.set_cookie.value == "abc123"
    assert first.set_cookie.header_value() == (
        "strangler_cohort=abc123; Max-Age=31536000; Path=/; HttpOnly; SameSite=Lax"
    )
    assert first.bucket == bucket("notifications", "abc123")
    # the next request brings the cookie back: same bucket, no new cookie
    again = go(
        plan,
        "GET",
        "/api/notifications",
        headers={"cookie": "other=1; strangler_cohort=abc123"},
        new_cohort_id="zzz",
    )
    assert again.set_cookie is None and again.bucket == first.bucket
    assert again.target == first.target


def test_cohort_cookie_name_comes_from_the_plan() -> None:
    plan = make_plan("canary", proxy="proxy: {cohort_cookie: {name: ck, max_age_s: 60}}")
    d = go(plan, "GET", "/api/notifications", new_cohort_id="n1")
    assert d.set_cookie is not None and d.set_cookie.header_value().startswith("ck=n1; Max-Age=60")
    assert not d.set_cookie.header_value().endswith("Secure")
    plan = make_plan("canary", proxy="proxy: {cohort_cookie: {secure: true}}")
    d = go(plan, "GET", "/api/notifications", new_cohort_id="n1")
    assert d.set_cookie is not None and d.set_cookie.header_value().endswith("; Secure")


def test_without_key_or_new_id_canary_stays_on_the_monolith() -> None:
    d = go(make_plan("canary", percent=100), "GET", "/api/notifications")
    assert d.target.url == MONOLITH and d.bucket is None and d.set_cookie is None


@pytest.mark.parametrize(
    ("cohort", "facts", "key"),
    [
        ("cookie:sid", {"cookies": {"sid": "s-1"}}, "s-1"),
        ("cookie:sid", {"headers": {"cookie": "sid=s-2"}}, "s-2"),
        ("query:customer", {"query_string": "a=1&customer=q-1"}, "q-1"),
        ("client", {"client": "10.0.0.7"}, "10.0.0.7"),
        ("header:X-Customer-Id", {"headers": {"x-customer-id": "h-1"}}, "h-1"),
    ],
)
def test_cohort_key_sources(cohort: str, facts: dict[str, object], key: str) -> None:
    d = go(make_plan("canary", percent=50, cohort=cohort), "GET", "/api/notifications", **facts)
    assert d.bucket == bucket("notifications", key)
    assert d.set_cookie is None


def test_custom_salt_changes_buckets() -> None:
    plan = parse_plan(
        f"""
version: 1
monolith: {{url: "{MONOLITH}"}}
services:
  notifications:
    url: {SVC}
    routes: [/api/notifications]
    stage: canary
    salt: rotated-2024
    canary: {{percent: 50, cohort: client}}
"""
    )
    d = go(plan, "GET", "/api/notifications", client="1.2.3.4")
    assert d.bucket == bucket("rotated-2024", "1.2.3.4")


def test_malformed_cookie_header_does_not_break_routing() -> None:
    plan = make_plan("canary", percent=50, cohort="cookie:sid")
    d = go(plan, "GET", "/api/notifications", headers={"cookie": 'sid=x1; bad"cookie; =;;'})
    assert d.bucket == bucket("notifications", "x1")


def test_from_asgi_scope_uses_raw_path_and_joins_headers() -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/notifications/a/b",
        "raw_path": b"/api/notifications/a%2Fb",
        "query_string": b"x=1",
        "headers": [
            (b"X-Customer-Id", b"c9"),
            (b"cookie", b"a=1"),
            (b"cookie", b"strangler_cohort=q"),
            (b"accept", b"a"),
            (b"accept", b"b"),
        ],
        "client": ("10.1.1.1", 5555),
    }
    facts = RequestFacts.from_asgi(scope, sample_roll=0.25, new_cohort_id="n")
    assert facts.path == "/api/notifications/a%2Fb" and facts.query_string == "x=1"
    assert facts.headers["x-customer-id"] == "c9" and facts.headers["accept"] == "a, b"
    assert facts.cookie("strangler_cohort") == "q" and facts.client == "10.1.1.1"
    assert facts.headers.get("X-Customer-ID") == "c9" and "accept" in facts.headers
    assert sorted(facts.headers) == ["accept", "cookie", "x-customer-id"]
    assert len(facts.headers) == 3 and facts.headers.get("missing") is None
    d = decide(make_plan(), facts)
    assert d.route is not None and d.route.path_template == "/api/notifications/{id}"


def test_match_route_alone() -> None:
    plan = make_plan()
    found = match_route(plan, "GET", "/api/notifications/5")
    assert found is not None and found[0].service == "notifications" and found[1] == {"id": "5"}
    assert match_route(plan, "PUT", "/api/notifications/5") is None


@given(
    st.sampled_from(["GET", "POST", "PATCH", "DELETE", "HEAD"]),
    st.text(alphabet="/abcnotifi%2Ee.{}", max_size=40),
    st.floats(min_value=0, max_value=1, exclude_max=True),
    st.sampled_from(["monolith", "shadow", "canary", "service", "retired"]),
)
def test_decide_is_total_and_pure(method: str, path: str, roll: float, stage: str) -> None:
    plan = make_plan(stage, percent=30)
    facts = RequestFacts(method, "/" + path, sample_roll=roll, new_cohort_id="fixed")
    d = decide(plan, facts)
    assert d == decide(plan, facts)
    assert d.target.url in plan.upstream_urls()
    if d.service is None:
        assert d.target.url == MONOLITH and d.shadow is None


INDEX_PLAN = parse_plan(
    """
version: 1
monolith: {url: "http://127.0.0.1:8000"}
services:
  a:
    url: http://127.0.0.1:9001
    routes:
      - {path: /, methods: [GET]}
      - {path: "/x/{p}", methods: [GET]}
      - {path: "/x/y/{rest:path}", methods: [GET, POST]}
      - {path: "/{p}/y", methods: [GET, DELETE]}
  b:
    url: http://127.0.0.1:9002
    routes:
      - {path: "/{rest:path}", methods: [POST]}
      - {path: "/x/y", methods: [POST]}
      - {path: "/{p}/{q}/z", methods: [GET]}
      - {path: "/x/{rest:path}", methods: [DELETE]}
"""
)


def _reference_match(plan: Plan, method: str, path: str) -> str | None:
    """Brute force over every route, most specific first."""
    parts = split_path(path)
    for route in sorted(plan.routes, key=lambda r: r.specificity, reverse=True):
        if method in route.methods and route.match(parts) is not None:
            return route.path_template
    return None


@given(
    st.sampled_from(["GET", "POST", "DELETE", "HEAD"]),
    st.lists(st.sampled_from(["x", "y", "z", "q", "", ".."]), max_size=5),
)
def test_indexed_matching_agrees_with_brute_force(method: str, segments: list[str]) -> None:
    path = "/" + "/".join(segments)
    found = match_route(INDEX_PLAN, method, path)
    assert (found[0].path_template if found else None) == _reference_match(INDEX_PLAN, method, path)


def test_shadow_decisions_are_shared_values_per_variant() -> None:
    plan = make_plan("shadow")
    a = go(plan, "GET", "/api/notifications/1", sample_roll=0.1)
    b = go(plan, "GET", "/api/notifications/2", sample_roll=0.2)
    assert a is b  # same route, same variant: one cached immutable value
    assert go(plan, "GET", "/api/notifications/2", sample_roll=0.3) is not a


def test_cookie_parsing_is_lenient_and_first_wins() -> None:
    from strangler_proxy.routing import parse_cookies

    assert parse_cookies('a=1; b="two"; a=3; broken; =x; c=') == {"a": "1", "b": "two", "c": ""}
    assert parse_cookies("") == {}


def test_several_upstream_urls_share_the_load_independently_of_shadow_sampling() -> None:
    def plan_with(stage: str) -> Plan:
        return parse_plan(
            f"""
version: 1
monolith: {{url: "{MONOLITH}"}}
services:
  notifications:
    url: [http://127.0.0.1:9001, http://127.0.0.1:9002, http://127.0.0.1:9003]
    routes: [/api/n]
    stage: {stage}
    canary: {{percent: 100, cohort: client}}
    shadow: {{sample: 0.3}}
"""
        )

    rolls = [i / 3000 for i in range(3000)]
    for stage in ("service", "retired", "canary"):
        plan = plan_with(stage)
        counts: dict[str, int] = {}
        for roll in rolls:
            d = go(plan, "GET", "/api/n", sample_roll=roll, client="1.2.3.4")
            counts[d.target.url] = counts.get(d.target.url, 0) + 1
        assert set(counts) == {
            "http://127.0.0.1:9001",
            "http://127.0.0.1:9002",
            "http://127.0.0.1:9003",
        }
        assert min(counts.values()) > 800, (stage, counts)
    plan = plan_with("shadow")
    mirrored: dict[str, int] = {}
    for roll in rolls:
        d = go(plan, "GET", "/api/n", sample_roll=roll)
        if d.shadow is not None:
            mirrored[d.shadow.url] = mirrored.get(d.shadow.url, 0) + 1
    assert sum(mirrored.values()) == 900  # 30% sampled
    assert len(mirrored) == 3 and min(mirrored.values()) > 250, mirrored


@given(
    st.text(min_size=1, max_size=20),
    st.integers(min_value=0, max_value=100),
    st.integers(min_value=0, max_value=100),
)
def test_decide_never_moves_a_service_cohort_back_when_the_percent_rises(
    customer: str, p1: int, p2: int
) -> None:
    low, high = sorted((p1, p2))
    facts = RequestFacts("GET", "/api/notifications", headers={"x-customer-id": customer})
    if decide(_CANARY[low], facts).to_service:
        assert decide(_CANARY[high], facts).to_service


_CANARY = {p: make_plan("canary", percent=p) for p in range(101)}
