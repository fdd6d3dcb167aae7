from types import MappingProxyType

import pytest

from strangler_proxy.shadow.rules import JsonPath, field_path, rules_from_mapping, segment


@pytest.mark.parametrize(
    ("pattern", "path", "hit"),
    [
        ("$.id", "$.id", True),
        ("$.id", "$.ids", False),
        ("$.id", "$.a.id", False),
        ("$.meta", "$.meta.etag", True),
        ("$..created_at", "$.created_at", True),
        ("$..created_at", "$.a.b[3].created_at", True),
        ("$..created_at", "$.created_at_x", False),
        ("$.items[*].id", "$.items[4].id", True),
        ("$.items[*].id", "$.items[*].id", True),
        ("$.items[*].id", "$.items[id=9].id", True),
        ("$.items[*].id", "$.items[4].sku", False),
        ("$.items[0]", "$.items[0].id", True),
        ("$.items[0]", "$.items[1].id", False),
        ("$.*.id", "$.a.id", True),
        ("$['a b']", "$['a b']", True),
        ("$", "$.anything", True),
    ],
)
def test_jsonpath_matching(pattern: str, path: str, hit: bool) -> None:
    assert JsonPath.parse(pattern).matches(path) is hit


@pytest.mark.parametrize("bad", ["id", "$.a[", "$.a..", "$[?(@.x)]", "$.a b"])
def test_jsonpath_rejects_unsupported_syntax(bad: str) -> None:
    with pytest.raises(ValueError, match="JSONPath"):
        JsonPath.parse(bad)


def test_field_path_generalises_positions_and_keys() -> None:
    assert field_path("$.a[3].b[id=7].c") == "$.a[*].b[*].c"
    assert segment("x") == ".x" and segment("a.b") == "['a.b']"


def test_rules_from_plan_mapping() -> None:
    rules = rules_from_mapping(
        {
            "sample": 1.0,
            "writes": "dry-run",
            "noise_sample": 0.5,
            "ignore": ["$.id", "$..created_at"],
            "compare": {
                "headers": ["Content-Type"],
                "status_only": ["/health"],
                "list_keys": {"$.results": "id"},
                "decimal_strings": False,
                "noise": {"relative": 0.3, "absolute": 1},
                "text": {"replace": ["\\d+ms"]},
            },
        },
        {"/api/x": {"ignore": ["$.etag"], "compare": {"decimal_strings": True}}},
    )
    d = rules.default
    assert d.is_ignored("$.id") and d.is_ignored("$.a.created_at") and not d.is_ignored("$.etag")
    assert d.headers == ("content-type",)
    assert d.list_key("$.results") == "id" and d.list_key("$.other") is None
    assert d.decimal_strings is False
    assert (d.noise.relative, d.noise.absolute) == (0.3, 1.0)
    assert rules.for_route("/health").status_only
    route = rules.for_route("/api/x")
    assert route.is_ignored("$.etag") and route.is_ignored("$.id")
    assert route.decimal_strings is True
    assert rules.for_route("/unknown") is d


def test_frozen_plan_values_are_accepted() -> None:
    frozen = MappingProxyType({"list_keys": MappingProxyType({"$.r": "id"}), "headers": ("a",)})
    assert rules_from_mapping({"ignore": ("$.id",), "compare": frozen}).default.headers == ("a",)


def test_route_status_only_flag() -> None:
    rules = rules_from_mapping(None, {"/p": {"compare": {"status_only": True}}})
    assert rules.for_route("/p").status_only and not rules.default.status_only


@pytest.mark.parametrize(
    ("shadow", "message"),
    [
        ({"ignroe": []}, r"shadow\.ignroe: unknown key"),
        ({"ignore": "$.id"}, r"shadow\.ignore: expected a list"),
        ({"ignore": ["id"]}, r"shadow\.ignore: JSONPath 'id' must start"),
        ({"compare": {"headerz": []}}, r"shadow\.compare\.headerz: unknown key"),
        ({"compare": {"noise": {"relative": "x"}}}, r"shadow\.compare\.noise\.relative"),
        ({"compare": {"noise": {"absolute": -1}}}, r"shadow\.compare\.noise"),
        ({"compare": {"noise": {"rel": 1}}}, r"shadow\.compare\.noise\.rel: unknown key"),
        ({"compare": {"list_keys": {"$.r": 3}}}, r"shadow\.compare\.list_keys\[\$\.r\]"),
        ({"compare": {"list_keys": {"r": "id"}}}, r"shadow\.compare\.list_keys"),
        ({"compare": {"decimal_strings": "yes"}}, r"decimal_strings: expected true or false"),
        ({"compare": {"status_only": "/x"}}, r"status_only: expected a list"),
        ({"compare": {"text": {"replace": ["("]}}}, r"text\.replace: bad pattern"),
        ({"compare": []}, r"shadow\.compare: expected a mapping"),
    ],
)
def test_invalid_rules_name_the_bad_key(shadow: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rules_from_mapping(shadow)


def test_invalid_route_override_names_the_route() -> None:
    with pytest.raises(ValueError, match=r"routes\[/p\]\.shadow\.compare\.status_only"):
        rules_from_mapping({}, {"/p": {"compare": {"status_only": "yes"}}})


def test_noise_warmup_follows_noise_sampling() -> None:
    assert rules_from_mapping({"noise_sample": 0.5}).default.noise.min_samples == 10
    assert rules_from_mapping({}).default.noise.min_samples == 0  # nothing to wait for
    explicit = {"noise_sample": 0.5, "compare": {"noise": {"min_samples": 3}}}
    assert rules_from_mapping(explicit).default.noise.min_samples == 3
    routed = rules_from_mapping({}, {"/p": {"compare": {"noise": {"relative": 1}}}})
    assert routed.for_route("/p").noise.min_samples == 0
    with pytest.raises(ValueError, match=r"noise\.min_samples: expected a whole number"):
        rules_from_mapping({"compare": {"noise": {"min_samples": 1.5}}})
    with pytest.raises(ValueError, match=r"shadow\.noise_sample: expected a number"):
        rules_from_mapping({"noise_sample": "half"})
