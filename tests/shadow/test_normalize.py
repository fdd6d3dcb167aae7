from strangler_proxy.shadow.normalize import (
    Text,
    TextRules,
    decimal_value,
    is_json_type,
    parse_body,
)


def test_json_by_content_type_including_suffix_types() -> None:
    assert parse_body(b'{"a": 10.0}', "application/json; charset=utf-8").value == {"a": 10.0}
    assert parse_body(b"[1]", "application/problem+json").is_json
    assert is_json_type("Application/JSON")
    assert not is_json_type("text/html")


def test_body_claiming_json_that_does_not_parse_is_kept_as_text() -> None:
    parsed = parse_body(b"{not json", "application/json")
    assert not parsed.is_json
    assert parsed.value == Text("{not json", "application/json")


def test_untyped_body_that_looks_like_json_is_parsed() -> None:
    assert parse_body(b'{"x": 1}', "").value == {"x": 1}


def test_text_whitespace_collapsed() -> None:
    parsed = parse_body(b"  hello \n\t world  ", "text/plain")
    assert parsed.value == Text("hello world", "text/plain")


def test_html_comments_and_csrf_tokens_removed() -> None:
    a = (
        b"<html><!-- rendered in 12ms --><form>"
        b"<input type='hidden' name='csrfmiddlewaretoken' value='abc123'></form></html>"
    )
    b = (
        b"<html><!-- rendered in 40ms --><form>"
        b"<input type='hidden' name='csrfmiddlewaretoken' value='zzz999'></form></html>"
    )
    assert parse_body(a, "text/html").value == parse_body(b, "text/html").value
    assert "abc123" not in parse_body(a, "text/html").value.value


def test_configured_replacements_mask_volatile_text() -> None:
    rules = TextRules(replace=(r"\d{4}-\d{2}-\d{2}",))
    a = parse_body(b"built 2024-01-01", "text/plain", rules).value
    b = parse_body(b"built 2025-12-31", "text/plain", rules).value
    assert a == b
    assert parse_body(b"built 2024-01-01", "text/plain").value != parse_body(
        b"built 2025-12-31", "text/plain"
    ).value


def test_text_rules_can_keep_whitespace() -> None:
    rules = TextRules(collapse_whitespace=False)
    assert parse_body(b"a  b", "text/plain", rules).value.value == "a  b"


def test_decimal_value() -> None:
    assert decimal_value("10.50") == decimal_value("10.5")
    assert decimal_value("-3") is not None
    assert decimal_value("1e5") is None
    assert decimal_value("abc") is None
    assert decimal_value("1" * 100) is None
