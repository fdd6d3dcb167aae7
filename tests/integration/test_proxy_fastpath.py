"""The protocol-level fast path (``forwarding/fastpath.py``) through the real proxy
process: which requests take it, which fall back to the ASGI handler, and the
connection-level behaviours only it implements (pipelining, backpressure, aborts)."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.proxy_env import ProxyEnv, proxy_env, wait_until
from tests.support.socket_upstream import SocketUpstream

PLAN = """
version: 1
monolith: {url: "{monolith}"}
proxy: {max_header_bytes: 8192, max_body_bytes: 1000000}
services:
  raw:
    url: "{raw}"
    routes: [{path: "/raw/{what}", methods: [GET]}]
    stage: service
"""


class RawUpstream(SocketUpstream):
    """Answers ``GET /raw/<what>`` with hand-written bytes, for responses a well-behaved
    ASGI app cannot produce (dying mid-chunk)."""

    def serve(self, conn: socket.socket) -> None:
        with conn:
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                what = head.split(b" ", 2)[1].rsplit(b"/", 1)[1]
                if what == b"chunked-dies":
                    conn.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                                 b"5\r\nhello\r\n")
                    time.sleep(0.1)
                    return  # closes without the last chunk
                if what == b"close-delimited":
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n")
                    conn.sendall(b"until the end")
                    return
                if what.startswith(b"blob-"):  # a whole response in one send
                    n = int(what[5:])
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s"
                                 % (n, b"b" * n))
                    continue
                if what.startswith(b"request-line"):  # echo what the proxy sent
                    line = head.split(b"\r\n", 1)[0]
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s"
                                 % (len(line), line))
                    continue
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyEnv]:
    raw = RawUpstream()
    plan = PLAN.replace("{raw}", raw.url)
    try:
        with proxy_env(tmp_path_factory.mktemp("fast"), plan, {"monolith": {}}) as e:
            yield e
    finally:
        raw.close()


def paths(env: ProxyEnv) -> tuple[float, float]:
    return (env.metric("strangler_forwarding_path_total", path="fast"),
            env.metric("strangler_forwarding_path_total", path="asgi"))


def read_response(f: socket.SocketIO | object, method: bytes = b"GET") -> tuple[int, dict[str, str],
                                                                                 bytes]:
    """One HTTP/1.1 response from a buffered socket file (``sock.makefile("rb")``)."""
    status_line = f.readline()  # type: ignore[attr-defined]
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := f.readline()) not in (b"\r\n", b""):  # type: ignore[attr-defined]
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if method == b"HEAD" or status in (204, 304):
        return status, headers, b""
    if "content-length" in headers:
        return status, headers, f.read(int(headers["content-length"]))  # type: ignore[attr-defined]
    body = b""
    while True:
        size = int(f.readline().strip(), 16)  # type: ignore[attr-defined]
        if size == 0:
            f.readline()  # type: ignore[attr-defined]
            return status, headers, body
        body += f.read(size)  # type: ignore[attr-defined]
        f.readline()  # type: ignore[attr-defined]


def test_ordinary_requests_take_the_fast_path(env: ProxyEnv) -> None:
    fast0, asgi0 = paths(env)
    for i in range(5):
        _, h, body = env.echo(f"/echo/{i}?q={i}", headers={"X-Request-ID": f"fast-{i}"})
        assert body["raw_path"] == f"/echo/{i}" and h["x-request-id"] == f"fast-{i}"
    status, _, _ = env.request("POST", "/upload", body=b"x" * 1000)
    assert status == 200
    fast1, asgi1 = paths(env)
    assert fast1 - fast0 == 6 and asgi1 == asgi0


def test_unusual_requests_fall_back_to_the_asgi_handler(env: ProxyEnv) -> None:
    fast0, asgi0 = paths(env)
    # chunked upload, a body over the fast path's buffer, Expect
    c = env.conn()
    c.request("POST", "/upload", body=iter([b"a" * 10, b"b" * 10]), encode_chunked=True,
              headers={"Transfer-Encoding": "chunked"})
    assert json.loads(c.getresponse().read())["size"] == 20
    c.close()
    big = b"z" * 100_000
    assert json.loads(env.request("POST", "/upload", body=big)[2])["size"] == len(big)
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(b"abc")
        f = s.makefile("rb")
        assert json.loads(read_response(f)[2])["size"] == 3
    fast1, asgi1 = paths(env)
    assert asgi1 - asgi0 == 3 and fast1 == fast0


def test_pipelined_requests_mixing_both_paths_are_answered_in_order(env: ProxyEnv) -> None:
    requests = [
        b"GET /echo?n=0 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n",  # ASGI path, in the middle of fast ones
        b"GET /echo?n=2 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"HEAD /json1k HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /echo?n=4 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody",
        b"GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /echo?n=6 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ]
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
        s.sendall(b"".join(requests))
        f = s.makefile("rb")
        got = [read_response(f, b"HEAD" if r.startswith(b"HEAD") else b"GET") for r in requests]
        assert f.read() == b""  # closed after the last one, nothing extra
    assert json.loads(got[0][2])["query_string"] == "n=0"
    assert json.loads(got[1][2])["size"] == 3
    assert json.loads(got[2][2])["query_string"] == "n=2"
    assert got[3][0] == 200 and int(got[3][1]["content-length"]) > 900 and got[3][2] == b""
    four = json.loads(got[4][2])
    assert four["query_string"] == "n=4" and four["body"] == "body"
    assert got[5][0] == 204
    assert json.loads(got[6][2])["query_string"] == "n=6"
    assert got[6][1]["connection"] == "close"


def test_a_response_held_for_the_batched_send_is_not_lost_when_garbage_follows(
    env: ProxyEnv,
) -> None:
    """The fast path holds its writes to the end of the loop iteration (writebatch.py);
    uvicorn answering the garbage with 400 and closing in the same iteration must
    still send the held response first."""
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
        s.sendall(b"GET /echo?n=1 HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP AT ALL\r\n\r\n")
        f = s.makefile("rb")
        first = read_response(f)
        rest = f.read()
    assert first[0] == 200 and json.loads(first[2])["query_string"] == "n=1"
    assert rest.startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize("extra", [b"", b"X-Request-ID: general-path\r\n"],
                         ids=["simple", "general"])
@pytest.mark.parametrize("target", [b"/raw/request-line?", b"/raw/request-line?a=%20b&c",
                                    b"/raw/request-line;x=%2F?%7e"])
def test_the_request_target_reaches_the_upstream_byte_exact(
    env: ProxyEnv, target: bytes, extra: bytes,
) -> None:
    """Including an empty query ("?" at the end), which httptools reads as no query."""
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (target, extra))
        status, _, body = read_response(s.makefile("rb"))
    assert status == 200 and body == b"GET %s HTTP/1.1" % target


@pytest.mark.parametrize("head", [
    b"GET /raw/request-line HTTP/1.1\r\nHost: good.example\r\nHost: evil.example\r\n\r\n",
    b"GET /raw/request-line HTTP/1.1\r\nHost: a b\r\n\r\n",
    b"GET /raw/request-line HTTP/1.1\r\nAccept: */*\r\n\r\n",
    b"GET /raw/request-line HTTP/1.1\r\nHost: good.example\r\nX-Request-ID: r\r\n"
    b"host: evil.example\r\n\r\n",
], ids=["two-hosts", "bad-host", "no-host", "two-hosts-general-path"])
def test_host_confusion_is_answered_400_not_forwarded(env: ProxyEnv, head: bytes) -> None:
    """RFC 9112 §3.2: a second Host, an invalid one or none in HTTP/1.1 gets 400 — an
    upstream reading the first Host while X-Forwarded-Host says the last invites cache
    poisoning."""
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
        s.sendall(head)
        status, _, body = read_response(s.makefile("rb"))
    assert status == 400 and b"Host" in body


def test_http10_without_host_is_still_forwarded(env: ProxyEnv) -> None:
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
        s.sendall(b"GET /raw/request-line HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"GET /raw/request-line HTTP/1.1")


def test_upstream_dying_mid_chunked_body_aborts_the_client(env: ProxyEnv) -> None:
    before = env.metric("strangler_upstream_errors_total", kind="closed_mid_body")
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
        s.sendall(b"GET /raw/chunked-dies HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head
    assert body == b"5\r\nhello\r\n"  # no terminating chunk: the client knows it is cut
    assert env.metric("strangler_upstream_errors_total", kind="closed_mid_body") == before + 1


def test_close_delimited_upstream_body_is_rechunked_and_connection_kept(env: ProxyEnv) -> None:
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
        s.sendall(b"GET /raw/close-delimited HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /echo?after=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        status, headers, body = read_response(f)
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        assert body == b"until the end"
        assert json.loads(read_response(f)[2])["query_string"] == "after=1"


def test_http_1_0_client_gets_one_response_and_unframed_bodies_end_with_the_connection(
    env: ProxyEnv,
) -> None:
    fast0, _ = paths(env)
    for target, framed in ((b"/echo", True), (b"/download?n=3&size=10", False)):
        with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
            s.sendall(b"GET " + target + b" HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"connection: close" in head
        assert b"transfer-encoding" not in head and (b"content-length" in head) == framed
        if framed:
            assert json.loads(body)["upstream"] == "monolith"
        else:
            assert body == b"x" * 30
    assert paths(env)[0] == fast0 + 2


def test_http_1_0_keep_alive_is_honoured_when_the_body_has_a_length(env: ProxyEnv) -> None:
    """``ab -k`` and other HTTP/1.0 clients ask with ``Connection: keep-alive``."""
    ask = b"HTTP/1.0\r\nHost: x\r\nConnection: Keep-Alive\r\n\r\n"
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
        f = s.makefile("rb")
        for target in (b"/echo?n=1", b"/raw/blob-100", b"/echo?n=3"):
            s.sendall(b"GET " + target + b" " + ask)
            status, headers, body = read_response(f)
            assert status == 200 and headers["connection"] == "keep-alive"
            assert int(headers["content-length"]) == len(body) > 0
        # a body without a length can only end with the connection
        s.sendall(b"GET /download?n=3&size=10 " + ask)
        data = f.read()
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"connection: close" in head and b"content-length" not in head
    assert body == b"x" * 30


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_slow_client_pauses_the_upstream_instead_of_buffering(env: ProxyEnv) -> None:
    size = 256 << 20
    pid = env.proxy.proc.pid
    before = _rss_kb(pid)
    with socket.create_connection(("127.0.0.1", env.port), timeout=30) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(f"GET /download?n=256&size={1 << 20}&length=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                  .encode())
        head, _, first = s.recv(4096).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        time.sleep(2)  # the client reads nothing: the upstream sends as fast as it can
        grown = _rss_kb(pid) - before
        got = len(first)
        while got < size:
            chunk = s.recv(1 << 20)
            assert chunk
            got += len(chunk)
    assert grown < 48 * 1024, f"proxy buffered {grown // 1024} MB for a stalled client"


def test_a_client_that_pipelines_but_never_reads_gets_no_more_than_it_drains(
    env: ProxyEnv,
) -> None:
    """Small responses arrive whole and complete at once, so pausing the upstream cannot
    hold them back: the proxy must stop taking the client's next requests instead."""
    count, size = 800, 30_000  # 24 MB of answers to 30 KB of requests
    pid = env.proxy.proc.pid
    before = _rss_kb(pid)
    served0 = env.metric("strangler_requests_total", service="raw", target="raw",
                         status="200")
    request = b"GET /raw/blob-%d HTTP/1.1\r\nHost: x\r\n\r\n" % size
    with socket.create_connection(("127.0.0.1", env.port), timeout=30) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(request * count)
        time.sleep(2)  # reads nothing
        grown = _rss_kb(pid) - before
        taken = env.metric("strangler_requests_total", service="raw", target="raw",
                           status="200") - served0
        f = s.makefile("rb")
        for _ in range(count):
            status, _, body = read_response(f)
            assert status == 200 and len(body) == size
    assert taken < count / 4, f"forwarded {taken} of {count} requests nobody read"
    assert grown < 16 * 1024, f"proxy buffered {grown // 1024} MB for a client not reading"


def test_client_leaving_mid_response_drops_the_upstream_and_is_logged(env: ProxyEnv) -> None:
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
        s.sendall(b"GET /download?n=500&size=65536&delay=0.01 HTTP/1.1\r\nHost: x\r\n"
                  b"X-Request-ID: leaver\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200")

    def upstream_released() -> bool:
        _, body = env.admin("status")
        pool = json.loads(body)["pools"][env.urls["monolith"]]
        return bool(pool["open"] == pool["idle"])

    assert wait_until(upstream_released, timeout=3)

    def logged() -> bool:
        return any('"request_id":"leaver"' in line and "client_disconnected" in line
                   for line in env.proxy.output().splitlines())

    assert wait_until(logged, timeout=5)


def test_fast_path_can_be_turned_off(tmp_path: Path) -> None:
    with proxy_env(tmp_path, PLAN.replace("{raw}", "{dead}"), {"monolith": {}},
                   env={"STRANGLER_FAST_PATH": "0"}) as off:
        assert off.echo("/echo")[2]["upstream"] == "monolith"
        assert off.metric("strangler_forwarding_path_total", path="fast") == 0
        assert off.metric("strangler_forwarding_path_total", path="asgi") >= 1


def test_idle_keep_alive_connection_is_closed_after_the_timeout(env: ProxyEnv) -> None:
    with socket.create_connection(("127.0.0.1", env.port), timeout=15) as s:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        assert read_response(f)[0] == 200
        idle_from = time.monotonic()
        assert f.read() == b""  # uvicorn's timeout_keep_alive (5 s) closes it
        idle = time.monotonic() - idle_from
    assert 4.5 <= idle <= 7.5


def test_shutdown_lets_an_in_flight_fast_request_finish(tmp_path: Path) -> None:
    with proxy_env(tmp_path, PLAN.replace("{raw}", "{dead}"), {"monolith": {}}) as e:
        result: list[tuple[int, bytes]] = []

        def slow_request() -> None:
            status, _, body = e.request("GET", "/slow?s=1.5")
            result.append((status, body))

        worker = threading.Thread(target=slow_request)
        worker.start()
        time.sleep(0.5)
        assert e.metric("strangler_forwarding_path_total", path="fast") >= 1
        e.proxy.proc.send_signal(signal.SIGINT)
        worker.join(10)
        assert result == [(200, b'{"slow": true}')]
        assert e.proxy.proc.wait(10) == 0
