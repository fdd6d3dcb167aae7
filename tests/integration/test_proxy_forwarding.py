"""Forwarding behaviour through the real proxy process in front of real uvicorn upstreams."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.proxy_env import ProxyEnv, proxy_env, raw_exchange, wait_until

PLAN = """
version: 1
monolith: {url: "{monolith}"}
proxy: {max_header_bytes: 8192, max_body_bytes: 1000000}
services:
  notifications:
    url: "{svc}"
    routes:
      - {path: /api/notifications, methods: [GET, POST]}
      - {path: "/api/notifications/{id}", methods: [GET, PATCH]}
    stage: service
  deadsvc:
    url: "{dead}"
    routes: [{path: /api/dead, methods: [GET]}]
    stage: service
  slowsvc:
    url: "{svc}"
    timeouts: {read: 0.5}
    routes: [{path: /slow, methods: [GET]}]
    stage: service
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyEnv]:
    with proxy_env(tmp_path_factory.mktemp("fwd"), PLAN, {"monolith": {}, "svc": {}}) as e:
        yield e


def header(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name]


def test_unmatched_goes_to_monolith_matched_to_service(env: ProxyEnv) -> None:
    _, h, body = env.echo("/anything/else")
    assert body["upstream"] == "monolith" and h["x-upstream"] == "monolith"
    _, h, body = env.echo("/api/notifications/7")
    assert body["upstream"] == "svc"


def test_path_and_query_are_forwarded_byte_exact(env: ProxyEnv) -> None:
    target = "/echo/a%2Fb/%7Euser/caf%C3%A9;p=1?x=%20y&z=%2F&&q=a+b&empty="
    _, _, body = env.echo(target)
    path, _, query = target.partition("?")
    assert body["raw_path"] == path
    assert body["query_string"] == query


def test_forwarding_headers_request_id_and_traceparent(env: ProxyEnv) -> None:
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    _, h, body = env.echo(
        "/echo",
        headers={
            "Host": "shop.example",
            "X-Forwarded-For": "10.1.1.1",
            "X-Request-ID": "req-42",
            "traceparent": tp,
        },
    )
    up = {k: v for k, v in body["headers"]}
    assert up["host"] == "shop.example"
    assert up["x-forwarded-for"] == "10.1.1.1, 127.0.0.1"
    assert up["x-forwarded-proto"] == "http"
    assert up["x-forwarded-host"] == "shop.example"
    assert up["via"] == "1.1 strangler"
    assert up["x-request-id"] == "req-42" and h["x-request-id"] == "req-42"
    _version, trace, span, _flags = up["traceparent"].split("-")
    assert trace == "4bf92f3577b34da6a3ce929d0e0e4736" and span != "00f067aa0ba902b7"
    assert h["via"] == "1.1 strangler"


def test_request_id_is_generated_when_absent(env: ProxyEnv) -> None:
    _, h, body = env.echo("/echo")
    up = {k: v for k, v in body["headers"]}
    assert len(up["x-request-id"]) == 32 and h["x-request-id"] == up["x-request-id"]
    assert len(up["traceparent"].split("-")[1]) == 32


def test_hop_by_hop_request_headers_are_stripped(env: ProxyEnv) -> None:
    raw = raw_exchange(
        env.port,
        b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close, X-Secret\r\nX-Secret: s\r\n"
        b"Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eA==\r\n"
        b"X-Kept: yes\r\n\r\n",
    )
    body = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    names = {k for k, _ in body["headers"]}
    assert {"connection", "x-secret", "keep-alive", "te", "proxy-authorization"}.isdisjoint(names)
    assert "x-kept" in names


def test_hop_by_hop_response_headers_are_stripped(env: ProxyEnv) -> None:
    _, headers, _ = env.request("GET", "/hop")
    names = {k.lower() for k, _ in headers}
    assert "x-internal" not in names and "keep-alive" not in names
    assert "x-kept" in names


def test_absolute_form_target_and_host_never_select_an_upstream(env: ProxyEnv) -> None:
    raw = raw_exchange(
        env.port,
        b"GET http://169.254.169.254/echo/x?y=1 HTTP/1.1\r\nHost: 169.254.169.254\r\n"
        b"Connection: close\r\n\r\n",
    )
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    body = json.loads(payload)
    assert body["upstream"] == "monolith" and body["raw_path"] == "/echo/x"


def test_multiple_set_cookie_headers_survive(env: ProxyEnv) -> None:
    _, headers, _ = env.request("GET", "/cookies")
    assert header(headers, "set-cookie") == ["a=1; Path=/", "b=2; HttpOnly", "c=3; Max-Age=60"]


def test_compressed_body_passes_untouched(env: ProxyEnv) -> None:
    _, headers, body = env.request("GET", "/gzip", headers={"Accept-Encoding": "gzip"})
    assert header(headers, "content-encoding") == ["gzip"]
    assert body == gzip.compress(b'{"compressed": true}' * 50, mtime=0)
    _, _, echoed = env.echo("/echo", headers={"Accept-Encoding": "br;q=1, gzip;q=0.5"})
    assert dict(echoed["headers"])["accept-encoding"] == "br;q=1, gzip;q=0.5"


def test_redirects_are_not_followed(env: ProxyEnv) -> None:
    status, headers, _ = env.request("GET", "/redirect")
    assert status == 302 and header(headers, "location") == ["/echo/redirected"]


def test_head_keeps_length_without_body_and_connection_stays_usable(env: ProxyEnv) -> None:
    c = env.conn()
    try:
        for _ in range(2):
            c.request("HEAD", "/json1k")
            r = c.getresponse()
            assert r.status == 200 and int(r.getheader("content-length") or 0) > 900
            assert r.read() == b""
        c.request("GET", "/echo")
        r = c.getresponse()
        assert r.status == 200 and json.loads(r.read())["method"] == "GET"
    finally:
        c.close()


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses_on_a_kept_alive_connection(env: ProxyEnv, status: int) -> None:
    c = env.conn()
    try:
        c.request("GET", f"/status/{status}")
        r = c.getresponse()
        assert r.status == status and r.read() == b""
        assert r.getheader("etag") == '"v1"'
        c.request("GET", "/echo")
        assert c.getresponse().status == 200
    finally:
        c.close()


def test_request_body_is_forwarded_by_length(env: ProxyEnv) -> None:
    payload = bytes(range(256)) * 1000
    status, _, body = env.request("POST", "/upload", body=payload)
    assert status == 200
    assert json.loads(body) == {"size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}


def test_chunked_request_body_is_streamed(env: ProxyEnv) -> None:
    parts = [b"a" * 1000, b"b" * 70000, b"c"]
    c = env.conn()
    try:
        c.request(
            "POST",
            "/upload",
            body=iter(parts),
            encode_chunked=True,
            headers={"Transfer-Encoding": "chunked"},
        )
        r = c.getresponse()
        data = b"".join(parts)
        assert json.loads(r.read()) == {
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    finally:
        c.close()


def test_expect_100_continue(env: ProxyEnv) -> None:
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
        s.sendall(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        interim = s.recv(1024)
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        s.sendall(b"hello")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["size"] == 5


def test_response_streams_before_the_upstream_finishes(env: ProxyEnv) -> None:
    c = env.conn()
    try:
        started = time.monotonic()
        c.request("GET", "/download?n=3&size=1000&delay=1")
        r = c.getresponse()
        first = r.read1(1000)
        first_at = time.monotonic() - started
        rest = r.read()
        total = time.monotonic() - started
    finally:
        c.close()
    assert first and len(first) + len(rest) == 3000
    assert r.getheader("transfer-encoding") == "chunked"
    assert first_at < 0.8 <= total


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_one_gigabyte_download_streams_in_bounded_memory(env: ProxyEnv) -> None:
    size = 1 << 20
    n = 1024
    before = _rss_kb(env.proxy.proc.pid)
    peak = before
    c = env.conn(timeout=120)
    got = 0
    try:
        c.request("GET", f"/download?n={n}&size={size}&length=1")
        r = c.getresponse()
        assert int(r.getheader("content-length") or 0) == n * size
        while chunk := r.read(4 << 20):
            got += len(chunk)
            peak = max(peak, _rss_kb(env.proxy.proc.pid))
    finally:
        c.close()
    assert got == n * size
    assert peak - before < 64 * 1024, f"proxy RSS grew by {(peak - before) // 1024} MB"


def test_upstream_dying_mid_body_truncates_the_client_response(env: ProxyEnv) -> None:
    c = env.conn()
    try:
        c.request("GET", "/truncated")
        r = c.getresponse()
        assert r.status == 200 and r.getheader("content-length") == "1000"
        with pytest.raises(http.client.IncompleteRead):
            r.read()
    finally:
        c.close()
    assert env.metric("strangler_upstream_errors_total", kind="closed_mid_body") >= 1


def test_refused_upstream_gives_502_with_request_id(env: ProxyEnv) -> None:
    status, headers, body = env.request("GET", "/api/dead", headers={"X-Request-ID": "r-502"})
    assert status == 502
    err = json.loads(body)
    assert err["error"] == "connect_error" and err["request_id"] == "r-502"
    assert header(headers, "x-request-id") == ["r-502"]


def test_upstream_timeout_gives_504(env: ProxyEnv) -> None:
    started = time.monotonic()
    status, _, body = env.request("GET", "/slow?s=3")
    assert status == 504 and json.loads(body)["error"] == "timeout"
    assert time.monotonic() - started < 2.5


def test_upstream_timeout_still_fires_after_the_proxy_sat_idle(env: ProxyEnv) -> None:
    """The read-timeout checker stops ~2 s after the last wait (an idle proxy stays
    idle); a request arriving after that must start it again."""
    assert env.request("GET", "/echo")[0] == 200
    time.sleep(2.6)
    started = time.monotonic()
    status, _, body = env.request("GET", "/slow?s=3")
    assert status == 504 and json.loads(body)["error"] == "timeout"
    assert time.monotonic() - started < 2.5


def test_oversized_headers_get_431(env: ProxyEnv) -> None:
    status, _, body = env.request("GET", "/echo", headers={"X-Big": "x" * 9000})
    assert status == 431 and json.loads(body)["error"] == "header_too_large"


def test_oversized_body_gets_413_by_length_before_it_is_sent(env: ProxyEnv) -> None:
    # only the head is sent: the proxy must answer from Content-Length alone
    raw = raw_exchange(
        env.port,
        b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000001\r\n"
        b"X-Request-ID: too-big\r\n\r\n",
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body) == {
        "error": "body_too_large",
        "message": "request body of 1000001 bytes exceeds 1000000",
        "request_id": "too-big",
    }


def test_oversized_chunked_body_gets_413(env: ProxyEnv) -> None:
    c = env.conn()
    try:
        c.request(
            "POST",
            "/upload",
            body=iter([b"x" * 600_000, b"y" * 600_000]),
            encode_chunked=True,
            headers={"Transfer-Encoding": "chunked"},
        )
        r = c.getresponse()
        assert r.status == 413
    except (BrokenPipeError, ConnectionResetError):
        pass  # the proxy may answer and close before the client finished sending
    finally:
        c.close()
    assert env.metric("strangler_rejected_total", status="413") >= 1


def test_malformed_content_length_is_rejected(env: ProxyEnv) -> None:
    raw = raw_exchange(
        env.port,
        b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\nConnection: close\r\n\r\n",
    )
    assert raw.startswith(b"HTTP/1.1 400")


def test_keep_alive_connections_are_reused(env: ProxyEnv) -> None:
    for _ in range(20):
        env.echo("/echo")
    status, body = env.admin("status")
    assert status == 200
    pools = json.loads(body)["pools"]
    monolith = pools[env.urls["monolith"]]
    assert monolith["reused"] >= 15 and monolith["opened"] <= monolith["reused"]


def test_http_client_library_sees_a_clean_exchange(env: ProxyEnv) -> None:
    c = http.client.HTTPConnection("127.0.0.1", env.port, timeout=5)
    c.request(
        "PATCH",
        "/api/notifications/5",
        body=b'{"read": true}',
        headers={"Content-Type": "application/json"},
    )
    r = c.getresponse()
    body = json.loads(r.read())
    c.close()
    assert body["upstream"] == "svc" and body["method"] == "PATCH"
    assert body["body"] == '{"read": true}'


def test_client_leaving_mid_download_releases_the_upstream(env: ProxyEnv) -> None:
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
        s.sendall(b"GET /download?n=2000&size=65536&delay=0.01 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
    # 2000 chunks at 10 ms would take 20 s; the proxy must drop the upstream at once

    def monolith_pool_idle() -> bool:
        _, body = env.admin("status")
        pool = json.loads(body)["pools"][env.urls["monolith"]]
        return bool(pool["open"] == pool["idle"])

    assert wait_until(monolith_pool_idle, timeout=3)


def test_body_limit_from_environment_overrides_the_plan(tmp_path: Path) -> None:
    with proxy_env(
        tmp_path, PLAN, {"monolith": {}, "svc": {}}, env={"STRANGLER_MAX_BODY_BYTES": "10"}
    ) as small:
        assert small.request("POST", "/upload", body=b"x" * 10)[0] == 200
        assert small.request("POST", "/upload", body=b"x" * 11)[0] == 413


def test_host_is_rewritten_when_the_plan_says_so(tmp_path: Path) -> None:
    plan = PLAN.replace("proxy: {", "proxy: {preserve_host: false, ")
    with proxy_env(tmp_path, plan, {"monolith": {}, "svc": {}}) as rewritten:
        _, _, body = rewritten.echo("/echo", headers={"Host": "shop.example"})
        up = dict(body["headers"])
        assert up["host"] == rewritten.urls["monolith"].removeprefix("http://")
        assert up["x-forwarded-host"] == "shop.example"
