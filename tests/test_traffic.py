"""strangler_proxy/traffic.py against a real HTTP server: the mix, bounded rate, failure
counting, notification reads right after orders (and none with ``--settle-s``)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from strangler_proxy import traffic
from strangler_proxy.traffic import TrafficStats


class Shop(BaseHTTPRequestHandler):
    seen: list[tuple[float, str, str, str | None]] = []

    def _reply(self, status: int, doc: object) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.seen.append((time.monotonic(), "GET", self.path, self.headers["x-customer-id"]))
        if self.path.startswith(("/api/customers", "/api/catalog/products?")):
            self._reply(200, {"results": [{"id": 1}, {"id": 2}]})
        elif self.path.startswith("/api/notifications?"):
            self._reply(200, {"results": [{"id": 7}]})
        elif self.path.startswith("/api/notifications/preferences/2"):
            self._reply(503, {"error": "down"})
        else:
            self._reply(200, {"ok": True})

    def do_POST(self) -> None:
        length = int(self.headers["content-length"])
        order = json.loads(self.rfile.read(length))
        self.seen.append((time.monotonic(), "POST", self.path, self.headers["x-customer-id"]))
        self._reply(409 if order["customer_id"] == 1 else 201, {})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def shop() -> Iterator[str]:
    Shop.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Shop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_mix_rate_and_counting(shop: str) -> None:
    stop, stats = threading.Event(), TrafficStats()
    runner = threading.Thread(target=traffic.run, args=(shop,), kwargs={
        "workers": 2, "stop": stop, "stats": stats, "rate_per_worker": 40.0})
    runner.start()
    time.sleep(3)
    stop.set()
    runner.join(10)
    doc = stats.as_dict()
    # bounded by the rate: one step per 1/rate, one request a step (two for "notification")
    assert 60 <= doc["requests"] <= 2 * 40 * 3 * 1.1 + 10
    kinds = set(doc["by_kind"])
    assert {"browse", "product", "order", "notifications"} <= kinds
    assert doc["failed"] == doc["by_status"].get("503", 0) > 0  # 5xx = failed
    assert doc["refused"] == doc["by_status"].get("409", 0) > 0  # 4xx = the shop said no
    assert all(f["status"] == 503 for f in doc["failures"])
    assert not [s for s in Shop.seen if s[1] not in ("GET", "POST")]  # reads only, + orders
    # by default shoppers check their notifications right after ordering: the shadow
    # engine classifies the replication delay as lag
    orders = [(t, c) for t, m, p, c in Shop.seen if m == "POST"]
    reads = [(t, c) for t, m, p, c in Shop.seen if p.startswith("/api/notifications?")]
    accepted = [(t, c) for t, c in orders if c != "1"]  # customer 1's orders get 409
    right_after = [o for o in accepted
                   if [t for t, c in reads if c == o[1] and o[0] < t < o[0] + 0.1]]  # the next step
    assert len(right_after) >= len(accepted) * 0.3, (len(right_after), len(accepted))


def test_settle_keeps_notification_reads_away_from_fresh_orders(shop: str) -> None:
    settle = 1.0
    stop, stats = threading.Event(), TrafficStats(settle_s=settle)
    runner = threading.Thread(target=traffic.run, args=(shop,), kwargs={
        "workers": 2, "stop": stop, "stats": stats, "rate_per_worker": 40.0})
    runner.start()
    time.sleep(3)
    stop.set()
    runner.join(10)
    orders = [(t, c) for t, m, p, c in Shop.seen if m == "POST"]
    reads = [(t, c) for t, m, p, c in Shop.seen if p.startswith("/api/notifications?")]
    assert orders and reads
    for ordered_at, customer in orders:
        assert not [t for t, c in reads
                    if c == customer and ordered_at < t < ordered_at + settle - 0.1]


def test_unreachable_proxy_counts_failures_and_writes_stats(tmp_path: Path) -> None:
    stats_file = tmp_path / "traffic.json"
    assert traffic.main(["--url", "http://127.0.0.1:9", "--workers", "1", "--rate", "20",
                         "--duration", "1.5", "--stats", str(stats_file)]) == 0
    doc = json.loads(stats_file.read_text())
    assert doc["requests"] > 0 and doc["failed"] == doc["requests"]
    assert doc["failures"][0]["error"].startswith("ConnectError")
