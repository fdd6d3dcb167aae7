"""Shadow mirroring through the real proxy: the client gets the monolith's answer, the
candidate gets a copy off the hot path, exchanges reach the sink."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strangler_proxy.shadow.observation import DRY_RUN_HEADER
from tests.support.proxy_env import ProxyEnv, proxy_env, wait_until
from tests.support.recording_sink import read

PLAN = """
version: 1
monolith: {url: "{monolith}"}
services:
  notifications:
    url: "{svc}"
    routes:
      - {path: /api/notifications, methods: [GET, POST]}
      - {path: "/api/notifications/{id}", methods: [GET, PATCH]}
    stage: shadow
    shadow: {sample: 1.0, writes: dry-run, noise_sample: 1.0}
  catalog:
    url: "{svc}"
    routes: [{path: /api/products, methods: [GET, POST]}]
    stage: shadow
    shadow: {sample: 1.0}
  slowpoke:
    url: "{slowsvc}"
    routes: [{path: /slow, methods: [GET]}]
    stage: shadow
  ghost:
    url: "{dead}"
    routes: [{path: /api/ghost, methods: [GET]}]
    stage: shadow
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProxyEnv, Path]]:
    tmp = tmp_path_factory.mktemp("shadow")
    record = tmp / "exchanges.jsonl"
    with proxy_env(
        tmp,
        PLAN,
        {"monolith": {}, "svc": {}, "slowsvc": {"UPSTREAM_DELAY": "2"}},
        env={"STRANGLER_SINK": "tests.support.recording_sink:factory", "RECORD_PATH": str(record)},
    ) as e:
        yield e, record


def exchange_for(record: Path, request_id: str, timeout: float = 10) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def look() -> bool:
        found[:] = [x for x in read(record) if x["request_id"] == request_id]
        return bool(found)

    assert wait_until(look, timeout), f"no exchange recorded for {request_id}"
    return found[0]


def test_client_gets_monolith_and_candidate_gets_a_copy(env: tuple[ProxyEnv, Path]) -> None:
    proxy, record = env
    status, _h, body = proxy.echo("/api/notifications/3?x=1", headers={"X-Request-ID": "sh-1"})
    assert status == 200 and body["upstream"] == "monolith"
    ex = exchange_for(record, "sh-1")
    assert ex["service"] == "notifications" and ex["route"] == "/api/notifications/{id}"
    assert ex["path"] == "/api/notifications/3" and ex["query"] == "x=1"
    assert ex["primary"]["status"] == 200
    assert json.loads(ex["primary"]["body"])["upstream"] == "monolith"
    assert ex["candidate"]["status"] == 200
    assert json.loads(ex["candidate"]["body"])["upstream"] == "svc"
    candidate_headers = dict(json.loads(ex["candidate"]["body"])["headers"])
    assert DRY_RUN_HEADER not in candidate_headers
    assert candidate_headers["x-request-id"] == "sh-1"


def test_noise_sample_sends_a_second_monolith_request(env: tuple[ProxyEnv, Path]) -> None:
    proxy, record = env
    proxy.echo("/api/notifications", headers={"X-Request-ID": "sh-noise"})
    ex = exchange_for(record, "sh-noise")
    assert ex["secondary"] is not None and ex["secondary"]["target"] == "monolith-secondary"
    assert json.loads(ex["secondary"]["body"])["upstream"] == "monolith"


def test_writes_are_mirrored_with_dry_run_header_when_allowed(env: tuple[ProxyEnv, Path]) -> None:
    proxy, record = env
    status, _, body = proxy.request(
        "POST", "/api/notifications", body=b'{"msg": "hi"}', headers={"X-Request-ID": "sh-post"}
    )
    assert status == 200 and json.loads(body)["upstream"] == "monolith"
    ex = exchange_for(record, "sh-post")
    seen = json.loads(ex["candidate"]["body"])
    assert seen["method"] == "POST" and seen["body"] == '{"msg": "hi"}'
    assert dict(seen["headers"])[DRY_RUN_HEADER] == "1"
    assert ex["secondary"] is None  # writes are never replayed on the monolith


def test_writes_are_not_mirrored_by_default(env: tuple[ProxyEnv, Path]) -> None:
    proxy, record = env
    proxy.request("POST", "/api/products", body=b"{}", headers={"X-Request-ID": "sh-nowrite"})
    proxy.echo("/api/products", headers={"X-Request-ID": "sh-read"})
    exchange_for(record, "sh-read")
    assert not [x for x in read(record) if x["request_id"] == "sh-nowrite"]


def test_slow_candidate_does_not_delay_the_client(env: tuple[ProxyEnv, Path]) -> None:
    proxy, record = env
    started = time.monotonic()
    status, _, _ = proxy.request("GET", "/slow?s=0", headers={"X-Request-ID": "sh-slow"})
    assert status == 200 and time.monotonic() - started < 1.0  # candidate takes 2 s
    ex = exchange_for(record, "sh-slow")
    assert ex["candidate"]["status"] == 200 and ex["candidate"]["error"] is None


QUEUE_PLAN = """
version: 1
monolith: {url: "{monolith}"}
proxy: {shadow_queue: 2}
services:
  slowpoke:
    url: "{slowsvc}"
    routes: [{path: /echo, methods: [GET]}]
    stage: shadow
"""


def test_full_shadow_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    with proxy_env(
        tmp_path, QUEUE_PLAN, {"monolith": {}, "slowsvc": {"UPSTREAM_DELAY": "8"}}
    ) as proxy:
        started = time.monotonic()
        for _ in range(30):
            status, _, _ = proxy.request("GET", "/echo")
            assert status == 200
        assert time.monotonic() - started < 6.0  # never waits for the 8 s candidate
        dropped = proxy.metric("strangler_shadow_total", service="slowpoke", outcome="dropped")
        # shadow_queue bounds mirrored requests held, waiting or in flight: 2 are with
        # the 8 s candidate, the other 28 were dropped
        assert dropped == 28
        assert proxy.metric("strangler_shadow_queue_depth") == 2


def test_dead_candidate_is_recorded_as_error_and_client_is_served(
    env: tuple[ProxyEnv, Path],
) -> None:
    proxy, record = env
    status, _, body = proxy.request("GET", "/api/ghost", headers={"X-Request-ID": "sh-ghost"})
    assert status == 200 and json.loads(body)["upstream"] == "monolith"
    ex = exchange_for(record, "sh-ghost")
    assert ex["candidate"]["status"] is None and ex["candidate"]["error"] == "connect_error"
    assert proxy.metric("strangler_shadow_total", service="ghost", outcome="candidate_error") >= 1


def test_dead_candidate_trips_the_mirror_breaker(env: tuple[ProxyEnv, Path]) -> None:
    proxy, _ = env
    for _ in range(12):
        assert proxy.request("GET", "/api/ghost")[0] == 200
        time.sleep(0.05)
    errors = proxy.metric("strangler_shadow_total", service="ghost", outcome="candidate_error")
    skipped = proxy.metric(
        "strangler_shadow_total", service="ghost", outcome="skipped_candidate_down"
    )
    assert errors <= 6 and skipped >= 6  # 5 failures open the breaker for 5 s


def test_unmatched_requests_are_never_mirrored(env: tuple[ProxyEnv, Path]) -> None:
    proxy, record = env
    proxy.echo("/echo/nothing", headers={"X-Request-ID": "sh-unmatched"})
    proxy.echo("/api/notifications", headers={"X-Request-ID": "sh-after"})
    exchange_for(record, "sh-after")
    assert not [x for x in read(record) if x["request_id"] == "sh-unmatched"]


CAP_PLAN = """
version: 1
monolith: {url: "{monolith}"}
services:
  notifications:
    url: "{svc}"
    routes: [{path: /upload, methods: [POST]}, {path: /download, methods: [GET]}]
    stage: shadow
    shadow: {sample: 1.0, writes: dry-run}
"""


def test_bodies_over_the_mirror_cap_are_served_but_not_mirrored(tmp_path: Path) -> None:
    record = tmp_path / "exchanges.jsonl"
    with proxy_env(
        tmp_path,
        CAP_PLAN,
        {"monolith": {}, "svc": {}},
        env={
            "STRANGLER_SHADOW_BODY_CAP": "1000",
            "STRANGLER_SINK": "tests.support.recording_sink:factory",
            "RECORD_PATH": str(record),
        },
    ) as proxy:
        big = proxy.request("POST", "/upload", body=b"x" * 5000, headers={"X-Request-ID": "big"})
        assert big[0] == 200 and json.loads(big[2])["size"] == 5000
        long = proxy.request("GET", "/download?n=3&size=1000", headers={"X-Request-ID": "long"})
        assert long[0] == 200 and len(long[2]) == 3000
        small = proxy.request("POST", "/upload", body=b"x" * 10, headers={"X-Request-ID": "ok"})
        assert small[0] == 200
        exchange_for(record, "ok")
        assert {x["request_id"] for x in read(record)} == {"ok"}
        skipped = proxy.metric(
            "strangler_shadow_total", service="notifications", outcome="skipped_too_large"
        )
        assert skipped == 2


def test_concurrent_mirrored_requests_keep_their_own_answers(env: tuple[ProxyEnv, Path]) -> None:
    """Mirrored requests share pipelined connections: each answer must still be paired
    with the request it belongs to."""
    from concurrent.futures import ThreadPoolExecutor

    proxy, record = env
    ids = [f"sh-many-{i}" for i in range(40)]

    def one(rid: str) -> int:
        return proxy.echo(f"/api/notifications/{rid}", headers={"X-Request-ID": rid})[0]

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(one, ids)) == {200}
    for rid in ids:
        ex = exchange_for(record, rid)
        seen = json.loads(ex["candidate"]["body"])
        assert seen["raw_path"] == f"/api/notifications/{rid}"
        assert dict(seen["headers"])["x-request-id"] == rid
