from __future__ import annotations

import io
import json

from strangler_proxy.forwarding.accesslog import AccessLog


def test_one_json_object_per_request_after_flush() -> None:
    out = io.BytesIO()
    log = AccessLog(stream=out)
    scope = {"method": "POST", "raw_path": b"/api/a%20b", "client": ("10.0.0.1", 1)}
    log.write(scope, "orders", "monolith", 502, 0.0123456, b"rid-1", "connect_error")
    assert out.getvalue() == b""  # buffered until flushed
    log.flush()
    entry = json.loads(out.getvalue())
    assert entry["msg"] == "access" and entry["path"] == "/api/a%20b"
    assert entry["status"] == 502 and entry["duration_ms"] == 12.346
    assert entry["request_id"] == "rid-1" and entry["error"] == "connect_error"
    assert entry["client"] == "10.0.0.1" and entry["service"] == "orders"
