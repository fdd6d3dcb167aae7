"""The proxy's simple path (``forwarding/quickhead.py``) through the real proxy process,
driven with raw sockets so requests really arrive whole in one read.

A recording socket upstream answers every request with the exact head it received, so
the tests see byte for byte what was forwarded. The simple path forwards header names
as the client wrote them (the general path lower-cases them), which is how a test knows
which path a request took where that matters; elsewhere only the outcome is asserted.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.proxy_env import ProxyEnv, proxy_env
from tests.support.socket_upstream import SocketUpstream

PLAN = """
version: 1
monolith: {url: "{monolith}"}
proxy: {max_header_bytes: 8192}
services:
  rec:
    url: "{raw}"
    routes: [{path: "/rec/{rest:path}", methods: [GET, HEAD, POST, PUT, DELETE, OPTIONS]}]
    stage: service
  flaky:
    url: "{raw}"
    routes: [{path: "/flaky/{rest:path}", methods: [GET]}]
    stage: service
    fallback: {on: [5xx], breaker: {failures: 1000}}
  cohort:
    url: "{raw}"
    routes: [{path: "/cohort/{rest:path}", methods: [GET]}]
    stage: canary
    canary: {percent: 50, cohort: "header:X-Customer-Id"}
"""

OK_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Upstream: raw\r\n"
           b"X-Mixed-Case: Kept As Sent\r\nContent-Length: %d\r\n\r\n")


class RecordingUpstream(SocketUpstream):
    """Answers each request with the head it received (as the body), or with the
    response its last path segment names."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self._lock = threading.Lock()
        super().__init__()

    def received(self) -> list[bytes]:
        with self._lock:
            return list(self.heads)

    def serve(self, conn: socket.socket) -> None:
        with conn:
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                end = buf.index(b"\r\n\r\n") + 4
                head, buf = buf[:end], buf[end:]
                length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
                size = int(length.group(1)) if length else 0
                while len(buf) < size:
                    buf += conn.recv(65536)
                buf = buf[size:]
                with self._lock:
                    self.heads.append(head)
                self._respond(conn, head)

    @staticmethod
    def _respond(conn: socket.socket, head: bytes) -> None:
        method, target = head.split(b" ", 2)[:2]
        path = target.partition(b"?")[0]
        what = path.rsplit(b"/", 1)[1]
        for pause in re.findall(rb"/sleep-([0-9.]+)/", path):
            time.sleep(float(pause))
        given = re.search(rb"\r\nx-respond: ([0-9a-f]*)(?:-([0-9]+))?\r\n", head, re.I)
        if given is not None:  # the response the test wants, in one write or split
            data = bytes.fromhex(given.group(1).decode())
            split = int(given.group(2) or len(data))
            conn.sendall(data[:split])
            if split < len(data):
                time.sleep(0.05)
                conn.sendall(data[split:])
        elif what in (b"status-204", b"status-304"):
            reason = b"No Content" if what == b"status-204" else b"Not Modified"
            conn.sendall(b"HTTP/1.1 %s %s\r\nETag: \"v1\"\r\nX-Upstream: raw\r\n\r\n"
                         % (what[-3:], reason))
        elif what == b"status-500":
            conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
                         b"X-Upstream: raw\r\nContent-Length: 4\r\n\r\nboom")
        elif what == b"split-response":  # head and body in two reads
            conn.sendall(OK_HEAD % len(head))
            time.sleep(0.1)
            conn.sendall(head)
        elif what == b"nested-response":  # a body that is itself a response, read alone
            inner = b"HTTP/1.1 200 OK\r\nX-Upstream: inner\r\nContent-Length: 2\r\n\r\nhi"
            conn.sendall(OK_HEAD % len(inner))
            time.sleep(0.1)
            conn.sendall(inner)
        elif what == b"head-with-body" and method == b"HEAD":  # wrong: a body after HEAD
            conn.sendall(OK_HEAD % 5 + b"hello")
        elif what == b"chunked":
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Upstream: raw\r\nTransfer-Encoding: chunked\r\n"
                         b"\r\n5\r\nhello\r\n")
            time.sleep(0.05)
            conn.sendall(b"6\r\n world\r\n0\r\n\r\n")
        elif method == b"HEAD":
            conn.sendall(OK_HEAD % len(head))
        else:
            conn.sendall(OK_HEAD % len(head) + head)


@dataclass
class Response:
    status: int
    head: bytes  # status line and header lines as the client received them
    headers: list[tuple[bytes, bytes]]  # names as sent
    body: bytes

    def get(self, name: str) -> bytes | None:
        found = [v for n, v in self.headers if n.lower() == name.encode()]
        assert len(found) <= 1, (name, self.headers)
        return found[0] if found else None

    def names(self) -> list[bytes]:
        return [n for n, _ in self.headers]


class Client:
    """One raw client connection to the proxy."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self, method: bytes = b"GET") -> Response:
        f = self.file
        lines = [f.readline()]
        assert re.fullmatch(rb"HTTP/1\.1 [1-5][0-9][0-9] [^\r\n]*\r\n", lines[0]), lines[0]
        status = int(lines[0][9:12])
        headers = []
        while (line := f.readline()) not in (b"\r\n", b""):
            lines.append(line)
            name, _, value = line.partition(b":")
            headers.append((name, value.strip()))
        response = Response(status, b"".join(lines), headers, b"")
        if method == b"HEAD" or status in (204, 304):
            return response
        length = response.get("content-length")
        if length is not None:
            response.body = f.read(int(length))
            return response
        assert response.get("transfer-encoding") == b"chunked", response
        while size := int(f.readline().strip(), 16):
            response.body += f.read(size)
            assert f.readline() == b"\r\n"
        assert f.readline() == b"\r\n"
        return response

    def exchange(self, data: bytes, method: bytes = b"GET") -> Response:
        self.send(data)
        return self.response(method)

    def at_eof(self) -> bool:
        return self.file.read(1) == b""

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture(scope="module")
def raw() -> Iterator[RecordingUpstream]:
    upstream = RecordingUpstream()
    yield upstream
    upstream.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, raw: RecordingUpstream) -> Iterator[ProxyEnv]:
    plan = PLAN.replace("{raw}", raw.url)
    with proxy_env(tmp_path_factory.mktemp("simple"), plan, {"monolith": {}}) as e:
        yield e


@pytest.fixture
def client(env: ProxyEnv) -> Iterator[Client]:
    c = Client(env.port)
    yield c
    c.close()


def request(target: bytes, *lines: bytes, method: bytes = b"GET",
            host: bytes = b"shop.example") -> bytes:
    fields = [b"Host: " + host, *lines] if host else list(lines)
    return b"%s %s HTTP/1.1\r\n%s\r\n" % (method, target, b"".join(f + b"\r\n" for f in fields))


def forwarded(method: bytes, target: bytes, lines: list[bytes], rid: bytes,
              host: bytes = b"shop.example") -> re.Pattern[bytes]:
    """What the simple path sends upstream: the client's lines as written, then the
    proxy's own headers (a new trace whose id is the request id)."""
    head = b"%s %s HTTP/1.1\r\n%s" % (method, target, b"".join(f + b"\r\n" for f in lines))
    head += (b"x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\nx-forwarded-host: %s\r\n"
             b"via: 1.1 strangler\r\nx-request-id: %s\r\n" % (host, rid))
    return re.compile(re.escape(head) + rb"traceparent: 00-%s-[0-9a-f]{16}-01\r\n\r\n" % rid)


def assert_forwarded(response: Response, method: bytes, target: bytes, lines: list[bytes],
                     host: bytes = b"shop.example") -> None:
    rid = response.get("x-request-id")
    assert rid is not None and re.fullmatch(rb"[0-9a-f]{32}", rid), response
    pattern = forwarded(method, target, [b"Host: " + host, *lines], rid, host)
    assert pattern.fullmatch(response.body), (response.body, pattern.pattern)


def normalized(head: bytes) -> list[bytes]:
    """A forwarded head with lower-cased names, values without leading whitespace and
    the per-request ids masked."""
    assert head.endswith(b"\r\n\r\n"), head
    line, *fields = head[:-4].split(b"\r\n")
    out = [line]
    for field in fields:
        name, _, value = field.partition(b":")
        name = name.lower()
        if name in (b"x-request-id", b"traceparent"):
            value = b"<id>"
        out.append(name + b": " + value.lstrip(b" \t"))
    return out


def paths(env: ProxyEnv) -> tuple[float, float]:
    return (env.metric("strangler_forwarding_path_total", path="fast"),
            env.metric("strangler_forwarding_path_total", path="asgi"))


# what the upstream receives --------------------------------------------------------------


def test_upstream_receives_request_line_and_header_block_as_sent(client: Client) -> None:
    target = b"/rec/a%2Fb/%7Euser/caf%C3%A9?q=%20x&y=1&z=a+b&e="
    lines = [b"User-Agent: raw/1", b"X-Mixed-Case: Value  with  spaces",
             b"Accept: */*", b"Cookie: a=1; b=2"]
    response = client.exchange(request(target, *lines, b"Connection: keep-alive"))
    assert response.status == 200
    assert_forwarded(response, b"GET", target, lines)  # no Connection line
    # an empty query and a trailing "?" stay as sent
    response = client.exchange(request(b"/rec/q?", b"Accept: */*"))
    assert_forwarded(response, b"GET", b"/rec/q?", [b"Accept: */*"])


def test_asgi_path_keeps_a_trailing_question_mark(env: ProxyEnv, client: Client) -> None:
    """A body too large for the fast path goes through the ASGI handler, whose scope has
    no way to say "empty query": the target still reaches the upstream as sent."""
    body = b"x" * (70 * 1024)
    fast0, asgi0 = paths(env)
    for target in (b"/rec/big?", b"/rec/big", b"/rec/big?a=1"):
        response = client.exchange(request(target, b"Content-Length: %d" % len(body),
                                           method=b"POST") + body)
        assert response.status == 200, response
        assert response.body.startswith(b"POST %s HTTP/1.1\r\n" % target), response.body[:80]
    fast1, asgi1 = paths(env)
    assert (fast1 - fast0, asgi1 - asgi0) == (0, 3)


def test_client_receives_upstream_head_as_sent_plus_via_and_request_id(
        client: Client) -> None:
    response = client.exchange(request(b"/rec/head", b"Accept: */*"))
    rid = response.get("x-request-id")
    assert rid is not None
    assert response.head == (OK_HEAD % len(response.body)).replace(
        b"\r\n\r\n", b"\r\nvia: 1.1 strangler\r\nx-request-id: %s\r\n" % rid)
    assert response.body.startswith(b"GET /rec/head HTTP/1.1\r\nHost: shop.example\r\n")


def test_connection_close_is_honoured_and_not_forwarded(client: Client) -> None:
    data = request(b"/rec/closing", b"Accept: */*", b"Connection: close")
    response = client.exchange(data)
    assert response.status == 200 and response.get("connection") == b"close"
    assert_forwarded(response, b"GET", b"/rec/closing", [b"Accept: */*"])
    assert client.at_eof()


def test_connection_naming_other_headers_drops_them(client: Client) -> None:
    response = client.exchange(request(b"/rec/hop", b"Connection: keep-alive, X-Secret",
                                       b"X-Secret: s", b"Accept: */*"))
    assert response.status == 200
    sent = normalized(response.body)
    assert b"accept: */*" in sent
    assert not [f for f in sent if f.split(b":")[0] in (b"connection", b"x-secret",
                                                        b"keep-alive")]


def test_client_request_id_traceparent_and_forwarded_for_are_kept(client: Client) -> None:
    trace = b"4bf92f3577b34da6a3ce929d0e0e4736"
    response = client.exchange(request(
        b"/rec/ids", b"X-Request-ID: client-rid-1", b"traceparent: 00-%s-00f067aa0ba902b7-01"
        % trace, b"X-Forwarded-For: 10.9.8.7", b"X-Forwarded-Proto: https", b"Via: 1.1 edge"))
    assert response.status == 200 and response.get("x-request-id") == b"client-rid-1"
    sent = normalized(response.body)
    assert b"x-forwarded-for: 10.9.8.7, 127.0.0.1" in sent
    assert b"x-forwarded-proto: https, http" in sent
    assert b"x-forwarded-host: shop.example" in sent
    assert b"via: 1.1 edge, 1.1 strangler" in sent
    assert b"x-request-id: client-rid-1\r\n" in response.body
    span = re.search(rb"\r\ntraceparent: 00-%s-([0-9a-f]{16})-01\r\n" % trace, response.body)
    assert span is not None and span.group(1) != b"00f067aa0ba902b7"
    # and the next plain request on the connection is the simple path's again
    response = client.exchange(request(b"/rec/plain", b"Accept: */*"))
    assert_forwarded(response, b"GET", b"/rec/plain", [b"Accept: */*"])


@pytest.mark.parametrize(("method", "target"), [
    (b"GET", b"/rec/same?x=1"), (b"POST", b"/rec/same"), (b"DELETE", b"/rec/same/1"),
    (b"OPTIONS", b"/rec/same"), (b"GET", b"/elsewhere/on/the/monolith?y=2"),
])
def test_simple_and_general_paths_forward_the_same(env: ProxyEnv, method: bytes,
                                                      target: bytes) -> None:
    lines = [b"User-Agent: raw/1", b"Accept-Language: en, de;q=0.5", b"X-Trailing: v  "]
    c = Client(env.port)
    try:
        simple = c.exchange(request(target, *lines, method=method))
        # a hop-by-hop header the general path drops sends the same request its way
        general = c.exchange(request(target, *lines, b"Keep-Alive: timeout=5", method=method))
    finally:
        c.close()
    assert simple.status == general.status == 200
    if target.startswith(b"/rec/"):  # the recording upstream: the heads as received
        assert simple.body.startswith(b"%s %s HTTP/1.1\r\nHost: " % (method, target))
        assert general.body.startswith(b"%s %s HTTP/1.1\r\nhost: " % (method, target))
        assert normalized(simple.body) == normalized(general.body)
    else:  # the monolith (uvicorn) echoes what it parsed
        assert _echo_view(simple.body) == _echo_view(general.body)
    masked = [(n.lower(), b"<id>" if n.lower() == b"x-request-id" else v)
              for n, v in simple.headers if n.lower() not in (b"content-length", b"date")]
    assert masked == [(n.lower(), b"<id>" if n.lower() == b"x-request-id" else v)
                      for n, v in general.headers
                      if n.lower() not in (b"content-length", b"date")]


def _echo_view(body: bytes) -> object:
    import json

    info = json.loads(body)
    info["headers"] = [[n, "<id>" if n in ("x-request-id", "traceparent") else v]
                       for n, v in info["headers"]]
    return info


# connections -------------------------------------------------------------------------------


def test_keep_alive_reuse_with_changing_paths_and_header_blocks(
        env: ProxyEnv, client: Client) -> None:
    fast0, asgi0 = paths(env)
    sent = 0
    for i in range(40):
        host = b"a.example" if i % 7 < 4 else b"b.example:8080"
        lines = [b"Accept: */*", b"X-Block: %d" % (i // 5)]
        if i % 10 == 9:  # now and then one the general path takes, in between
            response = client.exchange(request(b"/rec/mixed/%d" % i, b"X-Request-ID: r-%d" % i,
                                               *lines, host=host))
            assert response.get("x-request-id") == b"r-%d" % i
            assert b"\r\nx-forwarded-host: %s\r\n" % host in response.body
            sent += 1
            continue
        method = (b"GET", b"DELETE", b"GET", b"OPTIONS")[i % 4]
        target = b"/rec/k/%d?i=%d" % (i % 3, i)
        response = client.exchange(request(target, *lines, method=method, host=host))
        assert_forwarded(response, method, target, lines, host=host)
        sent += 1
    fast1, asgi1 = paths(env)
    assert (fast1 - fast0, asgi1 - asgi0) == (sent, 0)


def test_a_request_split_over_two_writes(client: Client) -> None:
    data = request(b"/rec/split/1", b"Accept: */*", b"X-Mixed-Case: Yes")
    client.send(data[:20])
    time.sleep(0.1)
    client.send(data[20:])
    response = client.response()
    assert response.status == 200
    assert normalized(response.body) == [
        b"GET /rec/split/1 HTTP/1.1", b"host: shop.example", b"accept: */*",
        b"x-mixed-case: Yes", b"x-forwarded-for: 127.0.0.1", b"x-forwarded-proto: http",
        b"x-forwarded-host: shop.example", b"via: 1.1 strangler", b"x-request-id: <id>",
        b"traceparent: <id>"]
    # the parser's message ended: the next whole request is recognised again
    response = client.exchange(data.replace(b"/split/1", b"/split/2"))
    assert_forwarded(response, b"GET", b"/rec/split/2", [b"Accept: */*", b"X-Mixed-Case: Yes"])


def test_pipelined_requests_are_answered_in_order(client: Client) -> None:
    targets = [b"/rec/sleep-0.2/p0", b"/rec/sleep-0.2/p1", b"/rec/p2?x", b"/rec/p3"]
    client.send(b"".join(request(t, b"Accept: */*") for t in targets[:2]))
    time.sleep(0.05)  # p0 is in flight, p1 waits its turn; p2 comes in a read of its own
    client.send(request(targets[2], b"Accept: */*"))
    for target in targets[:3]:
        response = client.response()
        assert response.status == 200
        assert response.body.startswith(b"GET %s HTTP/1.1\r\n" % target), response.body
    client.send(b"".join(request(t, b"Accept: */*") for t in [targets[3], b"/rec/p4"]))
    for target in (targets[3], b"/rec/p4"):
        assert client.response().body.startswith(b"GET %s HTTP/1.1\r\n" % target)
    response = client.exchange(request(b"/rec/after", b"Accept: */*"))
    assert_forwarded(response, b"GET", b"/rec/after", [b"Accept: */*"])


def test_head_204_and_304_keep_the_connection_framed(client: Client) -> None:
    response = client.exchange(request(b"/rec/headed", b"Accept: */*", method=b"HEAD"),
                               method=b"HEAD")
    assert response.status == 200 and response.body == b""
    assert int(response.get("content-length") or 0) > 0  # the upstream's, for the GET
    for status in (204, 304):
        response = client.exchange(request(b"/rec/status-%d" % status, b"Accept: */*"))
        assert response.status == status and response.get("etag") == b'"v1"'
        assert response.get("content-length") is None
        assert response.get("transfer-encoding") is None
    # nothing stray was left on the connection
    response = client.exchange(request(b"/rec/next", b"Accept: */*"))
    assert_forwarded(response, b"GET", b"/rec/next", [b"Accept: */*"])


def test_a_body_sent_wrongly_after_a_head_response_never_reaches_the_client(
        env: ProxyEnv) -> None:
    c = Client(env.port)
    try:
        response = c.exchange(request(b"/rec/head-with-body", b"Accept: */*", method=b"HEAD"),
                              method=b"HEAD")
        assert response.status == 200 and response.get("content-length") == b"5"
        response = c.exchange(request(b"/rec/after-head", b"Accept: */*"))
        assert_forwarded(response, b"GET", b"/rec/after-head", [b"Accept: */*"])
    finally:
        c.close()


def test_upstream_response_split_across_reads_and_chunked(client: Client) -> None:
    response = client.exchange(request(b"/rec/split-response", b"Accept: */*"))
    assert response.status == 200
    assert_forwarded(response, b"GET", b"/rec/split-response", [b"Accept: */*"])
    # a body read alone that looks like a whole response is still the body
    response = client.exchange(request(b"/rec/nested-response", b"Accept: */*"))
    assert response.status == 200 and response.get("x-upstream") == b"raw"
    assert response.body == b"HTTP/1.1 200 OK\r\nX-Upstream: inner\r\nContent-Length: 2\r\n\r\nhi"
    response = client.exchange(request(b"/rec/chunked", b"Accept: */*"))
    assert response.status == 200 and response.body == b"hello world"
    assert response.get("transfer-encoding") == b"chunked"
    response = client.exchange(request(b"/rec/next", b"Accept: */*"))
    assert_forwarded(response, b"GET", b"/rec/next", [b"Accept: */*"])


def test_upstream_5xx_still_falls_back_to_the_monolith(env: ProxyEnv, client: Client,
                                                        raw: RecordingUpstream) -> None:
    before = env.metric("strangler_fallbacks_total", service="flaky", reason="5xx")
    seen = len(raw.received())
    for i in range(3):  # the same 500 head each time: the response memo too
        response = client.exchange(request(b"/flaky/status-500", b"Accept: */*",
                                           b"X-Try: %d" % i))
        assert response.status == 200 and response.get("x-upstream") == b"monolith"
        assert response.body.count(b'"raw_path": "/flaky/status-500"') == 1
    assert env.metric("strangler_fallbacks_total", service="flaky", reason="5xx") == before + 3
    assert [h.split(b"\r\n")[0] for h in raw.received()[seen:]] == [
        b"GET /flaky/status-500 HTTP/1.1"] * 3


@pytest.mark.parametrize("target", [
    b"/_strangler/metrics", b"/%5Fstrangler/metrics", b"/%5fstrangler/metrics",
    b"/_strangler/status", b"/%5Fstrangler/status", b"/_strangler%2Fstatus",
])
def test_admin_prefix_is_never_forwarded(env: ProxyEnv, raw: RecordingUpstream,
                                         target: bytes) -> None:
    c = Client(env.port)
    try:
        for _ in range(2):
            response = c.exchange(request(target, b"Accept: */*"))
            assert response.get("x-upstream") is None, (target, response)
            assert response.status in (200, 401, 404), response
            if target.endswith(b"metrics"):
                assert response.status == 200
                assert b"strangler_forwarding_path_total" in response.body
            assert target not in response.body
    finally:
        c.close()
    assert not [h for h in raw.received() if b"strangler" in h.split(b"\r\n")[0]]


def test_simple_requests_count_as_fast_in_the_path_metric(env: ProxyEnv,
                                                          client: Client) -> None:
    fast0, asgi0 = paths(env)
    for i in range(7):
        response = client.exchange(request(b"/rec/count/%d" % i, b"Accept: */*"))
        assert_forwarded(response, b"GET", b"/rec/count/%d" % i, [b"Accept: */*"])
    fast1, asgi1 = paths(env)
    assert (fast1 - fast0, asgi1 - asgi0) == (7, 0)


# request smuggling ---------------------------------------------------------------------


def test_a_body_that_looks_like_a_request_stays_a_body(client: Client,
                                                       raw: RecordingUpstream) -> None:
    smuggled = request(b"/rec/smuggled/1", b"Accept: */*")
    client.send(request(b"/rec/upload", b"Content-Length: %d" % len(smuggled),
                        method=b"POST"))
    time.sleep(0.1)  # the head is read alone; the body arrives whole in a read of its own
    client.send(smuggled)
    response = client.response()
    assert response.status == 200
    assert response.body.startswith(b"POST /rec/upload HTTP/1.1\r\n")
    assert b"\r\ncontent-length: %d\r\n" % len(smuggled) in response.body.lower()
    response = client.exchange(request(b"/rec/after-upload", b"Accept: */*"))
    assert_forwarded(response, b"GET", b"/rec/after-upload", [b"Accept: */*"])
    assert not [h for h in raw.received() if b"/smuggled/" in h.split(b"\r\n")[0]]


def test_an_unread_body_after_an_early_answer_is_not_a_request(
        client: Client, raw: RecordingUpstream) -> None:
    # the admin app answers a POST to the metrics endpoint without reading its body; the
    # body, arriving later in a read of its own, must not be taken for the next request
    smuggled = request(b"/rec/smuggled/2", b"Accept: */*")
    client.send(request(b"/_strangler/metrics", b"Content-Length: %d" % len(smuggled),
                        method=b"POST"))
    response = client.response()
    assert response.status >= 400 and response.get("x-upstream") is None
    client.send(smuggled)
    response = client.exchange(request(b"/rec/after-early-answer", b"Accept: */*"))
    assert_forwarded(response, b"GET", b"/rec/after-early-answer", [b"Accept: */*"])
    assert not [h for h in raw.received() if b"/smuggled/" in h.split(b"\r\n")[0]]


# refused heads -------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "status"), [
    (request(b"/rec/bad", b"X-Nul: a\x00b"), 400),
    (request(b"/rec/bad", b"X-Fold: a", b" folded"), 400),
    (request(b"/rec/bad", b"X-Space : a"), 400),
    (request(b"/rec/bad", b"Accept: */*", method=b"FOO"), 400),
    (request(b"/rec/bad", b"Accept: */*").replace(b"\r\n", b"\n"), 400),
    (request(b"/rec/caf\xc3\xa9", b"Accept: */*"), 400),
    (request(b"/rec/bad", b"X-Big: " + b"x" * 9000), 431),  # plan: max_header_bytes 8192
    (request(b"/rec/bad", b"Host: evil.example"), 400),  # RFC 9112 section 3.2
    (request(b"/rec/bad", b"Accept: */*", host=b""), 400),
    (request(b"/rec/bad", b"Accept: */*", host=b"a b"), 400),
    (request(b"/rec/bad", b"Accept: */*", host=b"a/b@c"), 400),
], ids=["NUL", "obs-fold", "space-before-colon", "unknown-method", "bare-LF", "non-ASCII-target",
        "header-limit", "two-Hosts", "no-Host", "Host-with-space", "Host-with-path"])
def test_heads_a_strict_parser_refuses_are_answered_not_forwarded(
        env: ProxyEnv, raw: RecordingUpstream, data: bytes, status: int) -> None:
    seen = len(raw.received())
    c = Client(env.port)
    try:
        response = c.exchange(data)
    finally:
        c.close()
    assert response.status == status and response.get("x-upstream") is None
    assert raw.received()[seen:] == []


def test_canary_cohorts_agree_between_simple_and_general_paths(env: ProxyEnv) -> None:
    # the simple path decides canaries from its own reading of the header block: a key
    # with trailing whitespace must put the client in the same cohort both ways
    sides = set()
    c = Client(env.port)
    try:
        for i in range(24):
            key = b"X-Customer-Id: customer-%d%s" % (i, b" \t" if i % 2 else b"")
            simple = c.exchange(request(b"/cohort/x", key))
            general = c.exchange(request(b"/cohort/x", key, b"Keep-Alive: timeout=5"))
            assert simple.status == general.status == 200
            side = simple.get("x-upstream")
            assert side == general.get("x-upstream"), key
            sides.add(side)
            if side == b"raw":
                assert simple.body.startswith(b"GET /cohort/x HTTP/1.1\r\nHost: ")
                assert general.body.startswith(b"GET /cohort/x HTTP/1.1\r\nhost: ")
    finally:
        c.close()
    assert sides == {b"raw", b"monolith"}


def test_without_preserve_host_the_upstream_gets_its_own_host(
        tmp_path_factory: pytest.TempPathFactory, raw: RecordingUpstream) -> None:
    plan = PLAN.replace("{raw}", raw.url).replace("max_header_bytes: 8192",
                                                   "max_header_bytes: 8192, preserve_host: false")
    with proxy_env(tmp_path_factory.mktemp("nohost"), plan, {"monolith": {}}) as e:
        c = Client(e.port)
        try:
            for i in range(3):
                response = c.exchange(request(b"/rec/host/%d" % i, b"Accept: */*"))
                assert response.status == 200
                sent = normalized(response.body)
                netloc = raw.url.removeprefix("http://").encode()
                assert [f for f in sent if f.startswith(b"host:")] == [b"host: " + netloc]
                assert b"x-forwarded-host: shop.example" in sent
        finally:
            c.close()


SEGMENT = st.text(alphabet="abcXYZ019-._~!$&'()*+,;=:@", min_size=1, max_size=6).filter(
    lambda t: t not in (".", ".."))
QUERY = st.binary(max_size=12).map(lambda b: bytes(c for c in b if 0x21 <= c <= 0x7E and c != 0x23))
NAME = st.text(alphabet="!#$%&'*+-.^_`|~0123456789abcdefXYZ", min_size=1, max_size=8).filter(
    lambda n: n.lower() not in ("te", "keep-alive"))
VALUE = st.binary(max_size=16).map(
    lambda b: bytes(c for c in b if c == 9 or 0x20 <= c <= 0x7E or c >= 0x80))


@st.composite
def simple_requests(draw: st.DrawFn) -> tuple[bytes, bytes, list[bytes]]:
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS"]))
    target = b"/rec/" + b"/".join(s.encode() for s in draw(st.lists(SEGMENT, min_size=1,
                                                                       max_size=3)))
    if draw(st.booleans()):
        target += b"?" + draw(QUERY)
    lines = [b"%s:%s%s" % (draw(NAME).encode(), draw(st.sampled_from([b"", b" ", b"\t  "])),
                           draw(VALUE)) for _ in range(draw(st.integers(0, 6)))]
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), b"Connection:%s" % draw(
            st.sampled_from([b" keep-alive", b"Keep-Alive", b"  KEEP-ALIVE \t"])))
    return method, target, lines


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(simple_requests())
def test_generated_requests_are_forwarded_alike_by_both_paths(
        env: ProxyEnv, generated: tuple[bytes, bytes, list[bytes]]) -> None:
    method, target, lines = generated
    c = Client(env.port)
    try:
        simple = c.exchange(request(target, *lines, method=method))
        general = c.exchange(request(target, *lines, b"Keep-Alive: 5", method=method))
    finally:
        c.close()
    assert simple.status == general.status == 200
    assert simple.body.startswith(b"%s %s HTTP/1.1\r\nHost: " % (method, target))  # as sent
    assert general.body.startswith(b"%s %s HTTP/1.1\r\nhost: " % (method, target))
    assert normalized(simple.body) == normalized(general.body)


STATUS = st.sampled_from([200, 201, 203, 206, 301, 302, 400, 404, 410, 500, 502])
REASON = st.sampled_from([b" OK", b"", b" ", b" Some Reason", b" caf\xc3\xa9"])


@st.composite
def upstream_responses(draw: st.DrawFn) -> bytes:
    body = draw(st.binary(max_size=40))
    lines = [b"%s:%s%s\r\n" % (draw(NAME).encode(), draw(st.sampled_from([b"", b" ", b"\t "])),
                                draw(VALUE)) for _ in range(draw(st.integers(0, 5)))]
    lines += [b"Set-Cookie: c%d=%d\r\n" % (i, i) for i in range(draw(st.integers(0, 2)))]
    lines.insert(draw(st.integers(0, len(lines))), b"%s: %d\r\n" % (draw(st.sampled_from(
        [b"Content-Length", b"content-length", b"CONTENT-LENGTH"])), len(body)))
    return b"HTTP/1.1 %d%s\r\n%s\r\n%s" % (draw(STATUS), draw(REASON), b"".join(lines), body)


def _client_view(response: Response) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return response.status, [(n.lower(), b"<id>" if n.lower() == b"x-request-id" else v)
                             for n, v in response.headers], response.body


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(upstream_responses())
def test_generated_responses_reach_the_client_alike_whole_or_split(
        env: ProxyEnv, data: bytes) -> None:
    c = Client(env.port)
    try:
        whole = c.exchange(request(b"/rec/respond", b"X-Respond: " + data.hex().encode()))
        split = c.exchange(request(b"/rec/respond", b"X-Respond: %s-%d" % (
            data.hex().encode(), data.index(b"\r\n") + 2)))  # the parser reads this one
    finally:
        c.close()
    head = data[: data.index(b"\r\n\r\n") + 2]
    block = head.partition(b"\r\n")[2]
    assert whole.head.split(b"\r\n", 1)[1].startswith(block)  # names as the upstream sent
    assert _client_view(whole) == _client_view(split)
    assert whole.body == data[len(head) + 2 :]
