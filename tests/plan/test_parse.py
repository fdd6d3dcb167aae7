from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest

from strangler_proxy.plan import PlanError, Stage, parse_plan
from strangler_proxy.plan.model import ALL_METHODS, CohortSourceKind, thaw
from tests.plan.samples import REPO_PLAN, VALID


def errors(text: str) -> list[str]:
    with pytest.raises(PlanError) as info:
        parse_plan(text, "migration_plan.yaml")
    lines = str(info.value).splitlines()
    assert [str(f) for f in info.value.findings] == lines
    return lines


def test_valid_plan_becomes_frozen_values() -> None:
    plan = parse_plan(VALID, "migration_plan.yaml")
    assert plan.version == 1
    assert plan.monolith.url == "http://127.0.0.1:8000"
    assert list(plan.services) == ["notifications", "catalog", "orders"]
    n = plan.services["notifications"]
    assert n.stage is Stage.SHADOW
    assert n.upstream.url == "http://127.0.0.1:8101"
    assert (n.upstream.host, n.upstream.port, n.upstream.base_path) == ("127.0.0.1", 8101, "")
    assert n.canary.percent == 10.0
    assert n.canary.steps == (1.0, 10.0, 50.0)
    assert n.canary.cohort is not None
    assert n.canary.cohort.kind is CohortSourceKind.HEADER
    assert n.canary.cohort.name == "x-customer-id"
    assert n.shadow.sample == 0.5 and n.shadow.writes == "dry-run"
    assert n.shadow.ignore == ("$.id",)
    assert n.fallback is not None and n.fallback.on == {"connect_error", "timeout", "5xx"}
    assert n.salt == "notifications"
    assert n.routes[0].methods == {"GET", "HEAD", "POST"}  # GET implies HEAD
    orders = plan.services["orders"]
    assert orders.requires == ("catalog",)
    assert orders.routes[0].methods == ALL_METHODS  # string shorthand, no method list
    assert orders.stage is Stage.MONOLITH and orders.fallback is None
    assert isinstance(plan.services, MappingProxyType)
    with pytest.raises(dataclasses.FrozenInstanceError):
        n.stage = Stage.SERVICE  # type: ignore[misc]
    with pytest.raises(TypeError):
        plan.services["x"] = n  # type: ignore[index]


def test_raw_sections_are_read_only_and_thaw_back() -> None:
    text = VALID + "cdc: {source: {kind: postgres}, tables: [a, b]}\n"
    plan = parse_plan(text)
    assert plan.cdc["tables"] == ("a", "b")
    with pytest.raises(TypeError):
        plan.cdc["source"]["kind"] = "sqlite"  # type: ignore[index]
    assert thaw(plan.cdc) == {"source": {"kind": "postgres"}, "tables": ["a", "b"]}


def test_repo_plan_is_valid_and_matches_the_brief() -> None:
    plan = parse_plan(REPO_PLAN.read_text(), REPO_PLAN.name)
    assert plan.monolith.url == "http://127.0.0.1:8001"  # internal; strangle up: proxy on :8000
    assert plan.services["notifications"].upstream.url == "http://127.0.0.1:8101"
    assert plan.services["notifications"].stage is Stage.SHADOW
    assert plan.services["catalog"].upstream.url == "http://127.0.0.1:8102"
    assert plan.services["catalog"].stage is Stage.MONOLITH
    assert plan.services["orders"].upstream.url == "http://127.0.0.1:8103"
    assert plan.services["orders"].stage is Stage.MONOLITH
    assert plan.services["orders"].requires == ("catalog",)
    assert plan.warnings == ()


def test_error_names_file_line_and_key_path() -> None:
    text = VALID.replace("percent: 10,", "percent: 140,")
    assert errors(text) == [
        "migration_plan.yaml:11: services.notifications.canary.percent: must be 0..100, got 140"
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("sample: 0.5", "sample: 1.5", "12: services.notifications.shadow.sample: must be 0..1"),
        (
            "sample: 0.5",
            "sample: yes",
            "12: services.notifications.shadow.sample: must be a number",
        ),
        ("sample: 0.5", "sample: .nan", "services.notifications.shadow.sample: must be a finite"),
        ("writes: dry-run", "writes: always", "shadow.writes: must be 'off' or 'dry-run'"),
        (
            "stage: shadow",
            "stage: shaddow",
            "10: services.notifications.stage: must be one of "
            "monolith | shadow | canary | service | retired (did you mean 'shadow'?)",
        ),
        (
            "http://127.0.0.1:8101",
            "ftp://127.0.0.1:8101",
            "6: services.notifications.url: URL scheme must be http or https",
        ),
        ("http://127.0.0.1:8101", "http://:8101", "services.notifications.url: URL needs a host"),
        ("http://127.0.0.1:8101", "http://h/x?a=1", "URL must not carry a query"),
        ("http://127.0.0.1:8101", "http://u:p@h", "URL must not carry credentials"),
        ("http://127.0.0.1:8101", "http://h:99999", "services.notifications.url: invalid URL"),
        (
            "    stage: shadow\n",
            "    stage: shadow\n    stgae: x\n",
            "11: services.notifications.stgae: unknown key (did you mean 'stage'?)",
        ),
        ("version: 1", "version: 2", "1: version: unsupported plan version 2"),
        ("steps: [1, 10, 50]", "steps: [10, 5]", "canary.steps: must be strictly increasing"),
        ("steps: [1, 10, 50]", "steps: [1, 101]", "canary.steps[1]: must be 0..100"),
        ("steps: [1, 10, 50]", "steps: []", "canary.steps: must be a non-empty list"),
        ('cohort: "header:X-Customer-Id"', "cohort: ip", "canary.cohort: must be header:NAME"),
        ('cohort: "header:X-Customer-Id"', 'cohort: "header:bad name"', "not a valid header name"),
        ("on: [connect_error, timeout, 5xx]", "on: [boom]", "fallback.on: unknown failure kind"),
        ("to: monolith", "to: elsewhere", "fallback.to: only 'monolith' is supported"),
        ("methods: [GET, POST]", "methods: []", "routes[0].methods: must be a non-empty list"),
        ("methods: [GET, POST]", "methods: [GET, 'P O']", "routes[0].methods[1]: not an HTTP"),
        ("/api/notifications,", "api/notifications,", "routes[0].path: bad path template"),
        ("/api/notifications,", "/api//notifications,", "empty path segment"),
        ('"/api/notifications/{id}"', '"/api/{id}/{id}"', "parameter {id} appears twice"),
        ('"/api/notifications/{id}"', '"/api/{rest:path}/x"', "must be the last segment"),
        ('"/api/notifications/{id}"', '"/api/{id"', "bad parameter"),
        ('"/api/notifications/{id}"', '"/api/../x"', "'.' and '..' segments are not allowed"),
        (
            "requires: [catalog]",
            "requires: [catalgo]",
            "23: services.orders.requires[0]: unknown service 'catalgo' (did you mean 'catalog'?)",
        ),
        ("requires: [catalog]", "requires: [orders]", "requires[0]: a service cannot require"),
        ("requires: [catalog]", "requires: catalog", "requires: must be a list of strings"),
        ("  orders:\n", "  Orders:\n", "services.Orders: service names are lowercase"),
        ("  orders:\n", "  monolith:\n", "19: services.monolith: 'monolith' is reserved"),
        ("monolith:\n  url: http://127.0.0.1:8000\n", "", "1: monolith: required key is missing"),
        ("routes:\n      - /api/orders\n", "routes:\n", "services.orders.routes: must be a list"),
        (
            "    stage: monolith\n",
            "    stage: monolith\n    canary: null\n",
            "services.catalog.canary: must be a mapping, got null",
        ),
        (
            "    stage: monolith\n",
            "    stage: monolith\n    data: {owner: nobody}\n",
            "data.owner: must be 'monolith' or 'service'",
        ),
        (
            "    stage: monolith\n",
            "    stage: monolith\n    data: {tables: {a_t: t}, owned: [b_t]}\n",
            "services.catalog.data.owned[0]: 'b_t' is not one of data.tables (the tables the "
            "service has: a_t); the service can only own a table it syncs",
        ),
        (
            "    stage: monolith\n",
            "    stage: monolith\n    data: {tables: {a_t: t}, owned: [a_t, a_t]}\n",
            "data.owned[1]: 'a_t' is listed twice",
        ),
        (
            "    stage: monolith\n",
            "    stage: monolith\n    data: {tables: {a_t: t}, owned: a_t}\n",
            "data.owned: must be a list of strings",
        ),
        (
            "    stage: monolith\n",
            "    stage: monolith\n    gates: {max_error_rate: 2}\n",
            "gates.max_error_rate: must be 0..1",
        ),
        (
            "    stage: monolith\n",
            "    stage: monolith\n    gates: {min_samples: 2.5}\n",
            "gates.min_samples: must be a whole number",
        ),
        (
            "    stage: monolith\n",
            "    stage: monolith\n    gates: {min_sample: 2}\n",
            "gates.min_sample: unknown key (did you mean 'min_samples'?)",
        ),
        (
            "    stage: monolith\n",
            "    stage: monolith\n    timeouts: {connect: 0}\n",
            "services.catalog.timeouts.connect: must be > 0 and <= 600, got 0",
        ),
        (
            "    stage: monolith\n",
            "    stage: monolith\n    salt: ''\n",
            "salt: must be a non-empty",
        ),
        (
            "version: 1\n",
            "version: 1\nproxy: {cohort_cookie: {name: 'a b'}}\n",
            "proxy.cohort_cookie.name: not a valid cookie name",
        ),
        (
            "version: 1\n",
            "version: 1\nproxy: {max_header_bytes: 10}\n",
            "proxy.max_header_bytes: must be >= 1024, got 10",
        ),
        ("version: 1\n", "version: 1\nkafka: [a]\n", "2: kafka: must be a mapping, got a list"),
        ("version: 1\n", "version: 1\naudit: {histroy: h.jsonl}\n", "audit.histroy: unknown key"),
        ("version: 1\n", "version: 1\naudit: {history: 3}\n", "audit.history: must be a non-empty"),
    ],
)
def test_each_error_class(old: str, new: str, expected: str) -> None:
    assert old in VALID
    found = errors(VALID.replace(old, new, 1))
    assert any(expected in line for line in found), found
    assert all(line.startswith("migration_plan.yaml:") for line in found)


def test_stage_canary_requires_percent() -> None:
    text = VALID.replace("stage: shadow", "stage: canary").replace("percent: 10, ", "")
    assert errors(text) == [
        "migration_plan.yaml:11: services.notifications.canary: stage canary needs canary.percent"
    ]
    text = VALID.replace("    stage: monolith\n", "    stage: canary\n")
    assert errors(text) == [
        "migration_plan.yaml:18: services.catalog.stage: stage canary needs canary.percent"
    ]


def test_identical_routes_across_services_are_rejected() -> None:
    text = VALID.replace('"/api/catalog/products/{id}"', '"/api/notifications/{nid}"')
    assert errors(text) == [
        "migration_plan.yaml:17: services.catalog.routes[0].path: '/api/notifications/{nid}' "
        "overlaps services.notifications.routes[1] ('/api/notifications/{id}') for GET, HEAD"
    ]


def test_same_path_with_disjoint_methods_is_allowed() -> None:
    text = VALID.replace(
        '"/api/catalog/products/{id}", methods: [GET]', '"/api/notifications/{id}", methods: [PUT]'
    )
    plan = parse_plan(text)
    assert plan.services["catalog"].routes[0].methods == {"PUT"}


def test_requires_cycle_is_reported_once() -> None:
    text = VALID.replace("    stage: monolith\n", "    stage: monolith\n    requires: [orders]\n")
    found = errors(text)
    assert found == [
        "migration_plan.yaml:19: services.catalog.requires: dependency cycle: "
        "catalog -> orders -> catalog"
    ]


def test_service_ahead_of_its_requirement_is_a_warning_not_an_error() -> None:
    text = VALID.replace(
        "    requires: [catalog]\n", "    requires: [catalog]\n    stage: service\n"
    )
    plan = parse_plan(text, "migration_plan.yaml")
    assert [str(w) for w in plan.warnings] == [
        "migration_plan.yaml:23: services.orders.requires[0]: stage service is ahead of "
        "required service 'catalog' (stage monolith)"
    ]
    assert plan.warnings[0].level == "warning"


def test_every_error_is_reported_at_once() -> None:
    text = VALID.replace("percent: 10,", "percent: -1,").replace("sample: 0.5", "sample: 2")
    found = errors(text)
    assert len(found) == 2
    assert "canary.percent" in found[0] and "shadow.sample" in found[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "migration_plan.yaml:1: the plan is empty"),
        ("version: [1\n", "migration_plan.yaml:2: invalid YAML"),
        ("- 1\n- 2\n", "migration_plan.yaml:1: must be a mapping, got a list"),
        ("a: &x [*x]\n", "recursive alias"),
        (
            "a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
            "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
            "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
            "the plan expands to more than 200000 values (alias bomb?)",
        ),
        ("version: 1\nversion: 1\n", "migration_plan.yaml:2: version: duplicate key 'version'"),
        ("? [a]\n: 1\n", "mapping keys must be plain strings"),
        ("version: 1\n<<: 5\n", "merge key '<<' needs a mapping"),
        ("x: !!python/object:os.system ls\n", "invalid value"),
    ],
)
def test_yaml_level_errors(text: str, expected: str) -> None:
    found = errors(text)
    assert any(expected in line for line in found), found


def test_yaml_11_booleans_do_not_break_keys_or_writes() -> None:
    # `on:` is a boolean key in YAML 1.1 and `off` a boolean value; both must just work
    text = VALID.replace("writes: dry-run", "writes: off").replace(
        "fallback: {to: monolith, on: [connect_error, timeout, 5xx]}",
        "fallback:\n      to: monolith\n      on: [timeout]",
    )
    plan = parse_plan(text)
    service = plan.services["notifications"]
    assert service.shadow.writes == "off"
    assert service.fallback is not None and service.fallback.on == {"timeout"}


def test_merge_keys_and_anchors_work() -> None:
    text = VALID.replace(
        "  orders:\n    url: http://127.0.0.1:8103\n",
        "  orders:\n    <<: {stage: shadow, shadow: {sample: 0.25}}\n    url: http://127.0.0.1:8103\n",
    )
    orders = parse_plan(text).services["orders"]
    assert orders.stage is Stage.SHADOW and orders.shadow.sample == 0.25


def test_fallback_forms() -> None:
    base = VALID.replace("fallback: {to: monolith, on: [connect_error, timeout, 5xx]}", "{}")
    for form, expected_on in [
        ("fallback: monolith", {"connect_error", "timeout", "5xx"}),
        ("fallback: off", None),
        ("fallback: null", None),
        ("fallback: {on: [5xx], breaker: {failures: 3, reset_s: 1.5}}", {"5xx"}),
    ]:
        fb = parse_plan(base.replace("{}", form)).services["notifications"].fallback
        assert (fb.on if fb else None) == expected_on, form
    fb = parse_plan(base.replace("{}", "fallback: {breaker: {failures: 3, reset_s: 1.5}}"))
    policy = fb.services["notifications"].fallback
    assert policy is not None and (policy.breaker_failures, policy.breaker_reset_s) == (3, 1.5)


def test_per_route_shadow_overrides_and_compare_mapping() -> None:
    text = VALID.replace(
        "- {path: /api/notifications, methods: [GET, POST]}",
        "- {path: /api/notifications, methods: [GET, POST], "
        "shadow: {ignore: ['$.x'], compare: {decimal_strings: true}}}",
    ).replace('ignore: ["$.id"]}', 'ignore: ["$.id"], compare: {headers: [content-type]}}')
    n = parse_plan(text).services["notifications"]
    assert n.routes[0].shadow_ignore == ("$.x",)
    assert n.routes[0].shadow_compare == {"decimal_strings": True}
    assert n.routes[1].shadow_ignore is None
    assert thaw(n.shadow.compare) == {"headers": ["content-type"]}


def test_multiple_upstream_urls_and_timeouts() -> None:
    text = VALID.replace(
        "    url: http://127.0.0.1:8102\n",
        "    url: [http://127.0.0.1:8102/, https://b.example/base/]\n"
        "    timeouts: {connect: 0.5, read: 5}\n",
    )
    catalog = parse_plan(text).services["catalog"]
    assert [u.url for u in catalog.upstreams] == [
        "http://127.0.0.1:8102",
        "https://b.example/base/",
    ]
    assert catalog.upstreams[1].port == 443 and catalog.upstreams[1].base_path == "/base"
    assert catalog.upstream.connect_timeout == 0.5 and catalog.upstream.read_timeout == 5


def test_upstream_urls_lists_only_plan_upstreams() -> None:
    plan = parse_plan(VALID)
    assert plan.upstream_urls() == {
        "http://127.0.0.1:8000",
        "http://127.0.0.1:8101",
        "http://127.0.0.1:8102",
        "http://127.0.0.1:8103",
    }


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'ignore: ["$.id"]}',
            'ignore: ["$.id"], compare: {noise: {relative: x}}}',
            "migration_plan.yaml:12: services.notifications.shadow.compare.noise.relative: "
            "expected a number",
        ),
        (
            'ignore: ["$.id"]}',
            'ignore: ["$.id"], compare: {headerz: [a]}}',
            "migration_plan.yaml:12: services.notifications.shadow.compare.headerz: unknown key",
        ),
        (
            'ignore: ["$.id"]}',
            'ignore: ["$.id["]}',
            "migration_plan.yaml:12: services.notifications.shadow.ignore: JSONPath '$.id[': "
            "unsupported syntax",
        ),
        (
            '"/api/notifications/{id}", methods: [GET, PATCH]}',
            '"/api/notifications/{id}", methods: [GET, PATCH], '
            "shadow: {compare: {decimal_strings: 3}}}",
            "migration_plan.yaml:9: services.notifications.routes[1].shadow.compare."
            "decimal_strings: expected true or false",
        ),
    ],
)
def test_compare_rules_are_checked_by_the_comparison_engine(
    old: str, new: str, expected: str
) -> None:
    found = errors(VALID.replace(old, new, 1))
    assert len(found) == 1 and found[0].startswith(expected), found


def test_audit_history_is_part_of_the_plan() -> None:
    plan = parse_plan(VALID.replace("version: 1\n", "version: 1\naudit: {history: h.jsonl}\n", 1))
    assert plan.audit_history == "h.jsonl"
    assert parse_plan(VALID).audit_history is None


def test_data_owned_lists_the_tables_the_service_writes() -> None:
    plan = parse_plan(VALID.replace(
        "    stage: monolith\n",
        "    stage: monolith\n    data: {tables: {a_t: a, b_t: b}, owned: [b_t]}\n", 1),
        "migration_plan.yaml")
    data = plan.services["catalog"].data
    assert (data.owner, dict(data.tables), data.owned) == ("monolith", {"a_t": "a", "b_t": "b"},
                                                           ("b_t",))
    assert parse_plan(VALID, "migration_plan.yaml").services["catalog"].data.owned == ()
