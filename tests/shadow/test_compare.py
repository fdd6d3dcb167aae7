from typing import Any

import pytest

from strangler_proxy.shadow.compare import (
    Difference,
    Kind,
    compare,
    diff_json,
    same_raw,
    type_name,
)
from strangler_proxy.shadow.rules import rules_from_mapping

from .factories import obs

RULES = rules_from_mapping({}).default


def kinds(a: Any, b: Any, **compare_cfg: Any) -> list[tuple[str, Kind]]:
    rules = rules_from_mapping({"compare": compare_cfg}).default if compare_cfg else RULES
    return [(d.path, d.kind) for d in diff_json(a, b, rules)]


def test_equal_documents_have_no_differences() -> None:
    doc = {"a": [1, {"b": None}], "c": "x", "d": True}
    assert diff_json(doc, doc, RULES) == []


def test_numbers_compare_by_value() -> None:
    assert kinds({"n": 10}, {"n": 10.0}) == []
    assert kinds({"n": 10}, {"n": 10.5}) == [("$.n", Kind.VALUE_CHANGED)]


def test_decimal_strings_compare_as_numbers_when_configured() -> None:
    assert kinds({"p": "10.50"}, {"p": "10.5"}) == []
    assert kinds({"p": "10.50"}, {"p": "10.5"}, decimal_strings=False) == [
        ("$.p", Kind.VALUE_CHANGED)
    ]
    assert kinds({"p": "10.50"}, {"p": "10.51"}) == [("$.p", Kind.VALUE_CHANGED)]


def test_decimal_string_versus_number_is_a_type_change() -> None:
    assert kinds({"p": "10"}, {"p": 10}) == [("$.p", Kind.TYPE_CHANGED)]


def test_value_changed() -> None:
    [d] = diff_json({"a": {"b": "x"}}, {"a": {"b": "y"}}, RULES)
    assert d == Difference("$.a.b", Kind.VALUE_CHANGED, "x", "y")


def test_missing_and_extra_fields() -> None:
    assert kinds({"a": 1, "b": 2}, {"a": 1, "c": 3}) == [
        ("$.b", Kind.MISSING),
        ("$.c", Kind.EXTRA),
    ]


def test_type_changed_including_bool_versus_number_and_null() -> None:
    assert kinds({"a": True}, {"a": 1}) == [("$.a", Kind.TYPE_CHANGED)]
    assert kinds({"a": None}, {"a": "x"}) == [("$.a", Kind.TYPE_CHANGED)]
    assert kinds({"a": [1]}, {"a": {"0": 1}}) == [("$.a", Kind.TYPE_CHANGED)]


def test_list_length() -> None:
    [d] = diff_json({"items": [1, 2, 3]}, {"items": [1, 2]}, RULES)
    assert (d.path, d.kind, d.primary, d.candidate) == ("$.items", Kind.LIST_LENGTH, 3, 2)


def test_list_order_is_one_difference() -> None:
    a = {"items": [{"id": 1}, {"id": 2}, {"id": 3}]}
    b = {"items": [{"id": 3}, {"id": 1}, {"id": 2}]}
    assert kinds(a, b) == [("$.items", Kind.LIST_ORDER)]


def test_changed_elements_are_reported_per_position() -> None:
    a = {"items": [{"id": 1, "q": 1}, {"id": 2, "q": 1}]}
    b = {"items": [{"id": 1, "q": 1}, {"id": 2, "q": 5}]}
    [d] = diff_json(a, b, RULES)
    assert d.path == "$.items[1].q"
    assert d.field == "$.items[*].q"
    assert d.key == "value_changed $.items[*].q"


def test_keyed_lists_compare_as_sets() -> None:
    cfg = {"list_keys": {"$.results": "id"}}
    a = {"results": [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]}
    b = {"results": [{"id": 3, "v": "c"}, {"id": 2, "v": "B"}]}
    assert kinds(a, b, **cfg) == [
        ("$.results[id=1]", Kind.MISSING),
        ("$.results[id=2].v", Kind.VALUE_CHANGED),
        ("$.results[id=3]", Kind.EXTRA),
    ]
    reordered = {"results": list(reversed(a["results"]))}
    assert kinds(a, reordered, **cfg) == []


def test_keyed_list_with_duplicate_keys_falls_back_to_positions() -> None:
    cfg = {"list_keys": {"$.r": "id"}}
    assert kinds(
        {"r": [{"id": 1}, {"id": 1, "x": 1}]}, {"r": [{"id": 1}, {"id": 1, "x": 2}]}, **cfg
    ) == [("$.r[1].x", Kind.VALUE_CHANGED)]


def test_odd_keys_are_quoted_in_paths() -> None:
    assert kinds({"a b": 1}, {"a b": 2}) == [("$['a b']", Kind.VALUE_CHANGED)]


def test_compare_status_headers_and_body() -> None:
    rules = rules_from_mapping({"compare": {"headers": ["content-type", "x-version"]}}).default
    p = obs({"a": 1}, headers=(("content-type", "application/json"), ("x-version", "1")))
    c = obs(
        {"a": 2},
        status=201,
        headers=(("content-type", "application/json; charset=utf-8"),),
    )
    found = {(d.path, d.kind) for d in compare(p, c, rules)}
    assert found == {
        ("status", Kind.VALUE_CHANGED),
        ("headers.x-version", Kind.MISSING),
        ("$.a", Kind.VALUE_CHANGED),
    }


def test_status_only_routes_skip_the_body() -> None:
    rules = rules_from_mapping({"compare": {"status_only": ["/api/things/{id}"]}}).for_route(
        "/api/things/{id}"
    )
    assert compare(obs({"a": 1}), obs({"a": 2}), rules) == []
    assert [d.path for d in compare(obs({"a": 1}), obs({"a": 1}, status=500), rules)] == ["status"]


def test_json_versus_text_body_is_a_type_change() -> None:
    p = obs({"a": 1})
    c = obs(raw=b"<h1>Server Error</h1>", headers=(("content-type", "text/html"),))
    diffs = compare(p, c, RULES)
    assert ("$", Kind.TYPE_CHANGED) in {(d.path, d.kind) for d in diffs}


def test_text_bodies_compared_after_normalisation() -> None:
    html = (("content-type", "text/html"),)
    a = obs(raw=b"<p>Hello   <b>Ann</b></p>", headers=html)
    b = obs(raw=b"<p>Hello <b>Ann</b></p>\n", headers=html)
    c = obs(raw=b"<p>Hello <b>Bob</b></p>", headers=html)
    assert compare(a, b, RULES) == []
    [d] = compare(a, c, RULES)
    assert d.path == "$" and "Ann" in d.primary and "Bob" in d.candidate


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (None, "null"),
        (True, "boolean"),
        (1, "number"),
        (1.5, "number"),
        ("s", "string"),
        ([], "array"),
        ({}, "object"),
    ],
)
def test_type_names(value: Any, name: str) -> None:
    assert type_name(value) == name


def test_documents_nested_too_deep_are_one_difference_at_the_root() -> None:
    # orjson parses up to 1024 levels but serialises only ~255; Python recursion ~1000
    p = obs(raw=b"[" * 1000 + b"1" + b"]" * 1000)
    c = obs(raw=b"[" * 1000 + b"2" + b"]" * 1000)
    [d] = compare(p, c, RULES)
    assert (d.path, d.kind) == ("$", Kind.VALUE_CHANGED)
    assert compare(p, p, RULES) == []


def test_invalid_utf8_and_nan_bodies_are_compared_as_text() -> None:
    a = obs(raw=b'{"x": NaN}')
    b = obs(raw=b'{"x": NaN}\xff')
    [d] = compare(a, b, RULES)
    assert d.path == "$" and d.kind is Kind.VALUE_CHANGED


# -- same_raw: the byte-level shortcut the engine takes before parsing anything -------

JSON_RAW = ((b"content-type", b"application/json"), (b"content-length", b"9"))


def raw(
    status: int | None = 200, headers: Any = JSON_RAW, body: bytes = b'{"id": 1}'
) -> tuple[int | None, Any, bytes]:
    return status, headers, body


def test_same_raw_when_status_compared_headers_and_body_bytes_are_equal() -> None:
    rules = rules_from_mapping({}).default
    assert same_raw(rules, raw(), raw())
    # headers that are not compared may differ
    other = ((b"content-type", b"application/json"), (b"date", b"now"), (b"x-upstream", b"svc"))
    assert same_raw(rules, raw(), raw(headers=other))


@pytest.mark.parametrize(
    "candidate",
    [
        raw(status=201),
        raw(status=None),
        raw(body=b'{"id": 2}'),
        raw(body=b'{"id":1}'),  # equal JSON, other bytes: the full comparison decides
        raw(headers=((b"content-type", b"text/plain"),)),
        raw(headers=()),
        raw(headers=((b"content-type", b"application/json; charset=utf-8"),)),
    ],
)
def test_same_raw_refuses_anything_not_byte_identical(candidate: Any) -> None:
    assert not same_raw(rules_from_mapping({}).default, raw(), candidate)


def test_same_raw_follows_the_compared_headers_and_status_only_rules() -> None:
    etag = rules_from_mapping({"compare": {"headers": ["ETag"]}}).default
    a = raw(headers=((b"etag", b'"1"'), (b"content-type", b"text/html")))
    b = raw(headers=((b"etag", b'"2"'), (b"content-type", b"text/html")))
    c = raw(headers=((b"etag", b'"1"'), (b"content-type", b"application/json")))
    assert not same_raw(etag, a, b)
    assert same_raw(etag, a, c)  # content-type is not compared under these rules
    status_only = rules_from_mapping({"compare": {"status_only": ["/r"]}}).for_route("/r")
    assert same_raw(status_only, raw(body=b"a"), raw(body=b"b"))
    assert not same_raw(status_only, raw(body=b"a"), raw(status=500, body=b"a"))


def test_same_raw_agrees_with_compare_whenever_it_says_equal() -> None:
    rules = rules_from_mapping({"ignore": ["$.id"]}).default
    pairs = [
        (raw(), raw()),
        (raw(), raw(body=b'{"id": 2}')),
        (raw(), raw(status=404)),
        (raw(), raw(headers=((b"content-type", b"text/plain"),))),
    ]
    for p, c in pairs:
        if same_raw(rules, p, c):
            assert compare(decoded(p), decoded(c), rules) == []


def decoded(answer: tuple[int | None, Any, bytes]) -> Any:
    status, headers, body = answer
    text = tuple((n.decode(), v.decode()) for n, v in headers)
    return obs(status=status, headers=text, raw=body)
