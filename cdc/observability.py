"""Prometheus metrics and the small HTTP endpoint (``/healthz``, ``/metrics``,
``/status``) every CDC process serves."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["Metrics", "StatusServer"]


class Metrics:
    """One registry per process (tests run several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "cdc_events",
            "Records produced to Kafka, by op (tombstone included)",
            ["op"],
            registry=r,
        )
        self.delivered = Counter("cdc_records_delivered", "Records Kafka confirmed", registry=r)
        self.transactions = Counter(
            "cdc_transactions_acked", "Source transactions acknowledged to the slot", registry=r
        )
        self.acked_lsn = Gauge("cdc_acked_lsn", "Last LSN acknowledged to the slot", registry=r)
        self.lag_bytes = Gauge(
            "cdc_slot_lag_bytes",
            "WAL bytes between the server and the slot's confirmed flush",
            registry=r,
        )
        self.lag_seconds = Gauge(
            "cdc_lag_seconds",
            "Age of the oldest source commit read but not yet acknowledged (0 when caught up)",
            registry=r,
        )
        self.behind_source_ms = Gauge(
            "cdc_milliseconds_behind_source",
            "Processing time minus commit time of the last event (Debezium's metric)",
            registry=r,
        )
        self.pending_records = Gauge(
            "cdc_kafka_pending_records", "Records produced but not yet confirmed", registry=r
        )
        self.snapshot_rows = Counter(
            "cdc_snapshot_rows", "Rows read by snapshots", ["table"], registry=r
        )
        self.snapshot_rate = Gauge("cdc_snapshot_rows_per_second", "Snapshot speed", registry=r)
        self.snapshot_eta = Gauge("cdc_snapshot_eta_seconds", "Snapshot time left", registry=r)
        self.streaming = Gauge("cdc_streaming", "1 while streaming from the slot", registry=r)
        self.heartbeats = Counter("cdc_heartbeats", "Heartbeat records sent", registry=r)


class StatusServer:
    """``StatusServer("127.0.0.1", 0, metrics, status, healthy).start()`` → bound port."""

    def __init__(
        self,
        host: str,
        port: int,
        metrics: Metrics,
        status: Callable[[], dict[str, Any]],
        healthy: Callable[[], bool],
    ) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/metrics":
                    self._send(200, generate_latest(outer.metrics.registry), CONTENT_TYPE_LATEST)
                elif path in ("/healthz", "/status"):
                    ok = outer.healthy()
                    doc = outer.status() if path == "/status" else {"ok": ok}
                    body = json.dumps(doc, default=str).encode()
                    self._send(200 if ok or path == "/status" else 503, body, "application/json")
                else:
                    self._send(404, b'{"error": "not found"}', "application/json")

        self.metrics = metrics
        self.status = status
        self.healthy = healthy
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> int:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
