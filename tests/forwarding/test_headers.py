from __future__ import annotations

import re

import pytest

from strangler_proxy.forwarding import headers as headers_module
from strangler_proxy.forwarding.headers import (
    Header,
    InvalidRequestHeaders,
    TraceIds,
    client_response_headers,
    connection_tokens,
    next_traceparent,
    request_id_from,
    strip_hop_by_hop,
    upstream_request_headers,
)

TRACE = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def names(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [n for n, _ in headers]


def value(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    found = [v for n, v in headers if n == name]
    assert len(found) <= 1, found
    return found[0] if found else None


def test_connection_tokens_are_split_trimmed_and_lowered() -> None:
    headers = [(b"connection", b"Keep-Alive, X-Secret"), (b"connection", b" close ")]
    assert connection_tokens(headers) == {b"keep-alive", b"x-secret", b"close"}


def test_strip_hop_by_hop_removes_standard_and_connection_named_headers() -> None:
    headers = [
        (b"connection", b"x-secret"),
        (b"keep-alive", b"timeout=5"),
        (b"x-secret", b"1"),
        (b"te", b"trailers"),
        (b"upgrade", b"websocket"),
        (b"proxy-authorization", b"Basic x"),
        (b"transfer-encoding", b"chunked"),
        (b"accept", b"*/*"),
    ]
    assert strip_hop_by_hop(headers) == [(b"accept", b"*/*")]


def test_upstream_request_headers_append_forwarding_chain() -> None:
    result = upstream_request_headers(
        [
            (b"host", b"shop.example"),
            (b"x-forwarded-for", b"10.0.0.1"),
            (b"x-forwarded-proto", b"https"),
            (b"via", b"1.1 edge"),
            (b"accept-encoding", b"gzip, br"),
        ],
        client_ip=b"127.0.0.1",
        scheme=b"http",
    )
    h = result.headers
    assert value(h, b"host") == b"shop.example"
    assert value(h, b"x-forwarded-for") == b"10.0.0.1, 127.0.0.1"
    assert value(h, b"x-forwarded-proto") == b"https, http"
    assert value(h, b"x-forwarded-host") == b"shop.example"
    assert value(h, b"via") == b"1.1 edge, 1.1 strangler"
    assert value(h, b"accept-encoding") == b"gzip, br"


def test_upstream_request_headers_strip_hop_by_hop_expect_and_framing() -> None:
    result = upstream_request_headers(
        [
            (b"connection", b"keep-alive, x-hop"),
            (b"x-hop", b"secret"),
            (b"expect", b"100-continue"),
            (b"content-length", b"12"),
            (b"proxy-connection", b"keep-alive"),
        ],
        client_ip=b"1.2.3.4",
        scheme=b"http",
    )
    got = names(result.headers)
    for dropped in (b"connection", b"x-hop", b"expect", b"content-length", b"proxy-connection"):
        assert dropped not in got
    assert result.content_length == 12 and not result.chunked


def test_chunked_request_reports_chunked_and_ignores_length() -> None:
    result = upstream_request_headers(
        [(b"transfer-encoding", b"chunked")], client_ip=b"1.2.3.4", scheme=b"http"
    )
    assert result.chunked and result.content_length is None
    assert b"transfer-encoding" not in names(result.headers)


@pytest.mark.parametrize("bad", [b"abc", b"-1", b""])
def test_malformed_content_length_is_rejected(bad: bytes) -> None:
    with pytest.raises(InvalidRequestHeaders):
        upstream_request_headers([(b"content-length", bad)], client_ip=b"x", scheme=b"http")


def test_conflicting_content_lengths_are_rejected() -> None:
    with pytest.raises(InvalidRequestHeaders):
        upstream_request_headers(
            [(b"content-length", b"1"), (b"content-length", b"2")], client_ip=b"x", scheme=b"http"
        )


def test_host_override_replaces_host_but_keeps_original_in_forwarded_host() -> None:
    result = upstream_request_headers(
        [(b"host", b"shop.example")],
        client_ip=b"1.2.3.4",
        scheme=b"http",
        host_override=b"notifications.internal:8101",
    )
    assert value(result.headers, b"host") == b"notifications.internal:8101"
    assert value(result.headers, b"x-forwarded-host") == b"shop.example"


def test_request_id_is_propagated_or_generated() -> None:
    kept = upstream_request_headers([(b"x-request-id", b"abc-123")], client_ip=b"x", scheme=b"http")
    assert kept.request_id == b"abc-123" and value(kept.headers, b"x-request-id") == b"abc-123"
    made = upstream_request_headers([], client_ip=b"x", scheme=b"http")
    assert re.fullmatch(rb"[0-9a-f]{32}", made.request_id)
    assert request_id_from(b"has space") != b"has space"
    assert request_id_from(b"x" * 201) != b"x" * 201


def test_trace_ids_are_hex_unique_across_batches_and_never_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = TraceIds()
    taken = [ids.take() for _ in range(3 * TraceIds.BATCH + 5)]  # several bulk draws
    assert all(re.fullmatch(rb"[0-9a-f]{32}", rid) and re.fullmatch(rb"[0-9a-f]{16}", span)
               for rid, span in taken)
    assert len({rid for rid, _ in taken}) == len(taken)
    # a draw of zeros (W3C forbids zero trace and span ids) is skipped, not handed out
    draws = iter([0, 2 ** (192 * TraceIds.BATCH) - 1])
    monkeypatch.setattr(headers_module, "_bits", lambda _: next(draws))
    zeros = TraceIds()
    assert zeros.take() == (b"f" * 32, b"f" * 16)


def test_traceparent_keeps_trace_id_and_flags_with_a_new_span() -> None:
    nxt = next_traceparent(TRACE)
    version, trace, span, flags = nxt.split(b"-")
    assert (version, trace, flags) == (b"00", b"4bf92f3577b34da6a3ce929d0e0e4736", b"01")
    assert span != b"00f067aa0ba902b7" and re.fullmatch(rb"[0-9a-f]{16}", span)
    assert next_traceparent(TRACE) != nxt


@pytest.mark.parametrize(
    "bad",
    [
        None,
        b"garbage",
        b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ],
)
def test_invalid_traceparent_starts_a_new_trace(bad: bytes | None) -> None:
    nxt = next_traceparent(bad)
    assert re.fullmatch(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-01", nxt)
    assert b"4bf92f3577b34da6a3ce929d0e0e4736" not in nxt


def test_request_traceparent_is_rewritten() -> None:
    result = upstream_request_headers([(b"traceparent", TRACE)], client_ip=b"x", scheme=b"http")
    tp = value(result.headers, b"traceparent")
    assert tp is not None and tp.split(b"-")[1] == TRACE.split(b"-")[1] and tp != TRACE


def test_response_headers_keep_every_set_cookie_in_order() -> None:
    out = client_response_headers(
        [
            (b"set-cookie", b"a=1; Path=/"),
            (b"content-type", b"text/plain"),
            (b"set-cookie", b"b=2; HttpOnly"),
            (b"connection", b"keep-alive, x-internal"),
            (b"x-internal", b"1"),
            (b"transfer-encoding", b"chunked"),
            (b"content-encoding", b"gzip"),
        ],
        status=200,
        request_id=b"rid",
    )
    assert [v for n, v in out if n == b"set-cookie"] == [b"a=1; Path=/", b"b=2; HttpOnly"]
    assert b"x-internal" not in names(out) and b"transfer-encoding" not in names(out)
    assert value(out, b"content-encoding") == b"gzip"
    assert value(out, b"via") == b"1.1 strangler"
    assert value(out, b"x-request-id") == b"rid"


def test_response_keeps_upstream_request_id_and_appends_via() -> None:
    out = client_response_headers(
        [(b"x-request-id", b"up"), (b"via", b"1.0 app")], status=200, request_id=b"rid"
    )
    assert value(out, b"x-request-id") == b"up"
    assert value(out, b"via") == b"1.0 app, 1.1 strangler"


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses_drop_content_length(status: int) -> None:
    out = client_response_headers([(b"content-length", b"10")], status=status, request_id=b"r")
    assert b"content-length" not in names(out)
    kept = client_response_headers([(b"content-length", b"10")], status=200, request_id=b"r")
    assert value(kept, b"content-length") == b"10"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ([(b"host", b"good.example"), (b"host", b"evil.example")], "more than one Host"),
        ([(b"host", b"a b")], "malformed Host"),
        ([(b"host", b"a/b")], "malformed Host"),
        ([(b"host", b"caf\xc3\xa9.example")], "malformed Host"),
        ([(b"accept", b"*/*")], "missing Host"),
    ],
)
def test_host_must_be_one_valid_value_rfc9112(headers: list[Header], message: str) -> None:
    with pytest.raises(InvalidRequestHeaders, match=message):
        upstream_request_headers(headers, client_ip=b"1.2.3.4", scheme=b"http",
                                 require_host=True)


@pytest.mark.parametrize("host", [b"", b"shop.example", b"127.0.0.1:8000", b"[::1]:8000",
                                  b"xn--caf-dma.example", b"a%41.example"])
def test_valid_hosts_pass_and_http10_may_omit_host(host: bytes) -> None:
    rh = upstream_request_headers([(b"host", host)], client_ip=b"1.2.3.4", scheme=b"http",
                                  require_host=True)
    assert rh.host == host
    assert upstream_request_headers([], client_ip=b"1.2.3.4", scheme=b"http").host is None
