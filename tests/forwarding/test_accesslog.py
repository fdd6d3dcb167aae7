from __future__ import annotations

import io
import json
import time

from strangler_proxy.forwarding.accesslog import AccessLog


def test_one_json_object_per_request_after_flush() -> None:
    out = io.BytesIO()
    log = AccessLog(stream=out)
    scope = {"method": "POST", "raw_path": b"/api/a%20b", "client": ("10.0.0.1", 1)}
    log.write(scope, "orders", "monolith", 502, 0.0123456, b"rid-1", "connect_error")
    assert out.getvalue() == b""  # buffered until flushed
    log.flush()
    entry = json.loads(out.getvalue())
    assert abs(entry["ts"] - time.time()) < 5 and entry["ts"] != int(entry["ts"])
    assert list(entry)[:3] == ["ts", "component", "msg"]  # the usual keys first
    assert entry["msg"] == "access" and entry["path"] == "/api/a%20b"
    assert entry["status"] == 502 and entry["duration_ms"] == 12.346
    assert entry["request_id"] == "rid-1" and entry["error"] == "connect_error"
    assert entry["client"] == "10.0.0.1" and entry["service"] == "orders"


def test_free_form_values_are_json_escaped() -> None:
    out = io.BytesIO()
    log = AccessLog(stream=out)
    log.record("GET", b'/a"b\\c\xe9', None, 'svc"x', "monolith", 200, 0.5, b'r"\\1', None)
    log.record("GET", b"/ok", "::1", 'svc"x', "monolith", 204, 0.0, b"r2", "client_disconnected")
    log.flush()
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["path"] == '/a"b\\c\xe9' and first["request_id"] == 'r"\\1'
    assert first["service"] == 'svc"x' and first["client"] is None and "error" not in first
    assert first["duration_ms"] == 500.0
    assert second["client"] == "::1" and second["error"] == "client_disconnected"


def test_every_line_carries_its_own_values() -> None:
    """One dict is reused for every line: no value may leak from one line to the next."""
    out = io.BytesIO()
    log = AccessLog(stream=out)
    for i in range(30):
        log.record("GET" if i % 2 else "POST", b"/p/%d" % i, None if i == 3 else f"10.0.0.{i % 3}",
                   f"svc{i % 4}", "monolith", 200 + i, i / 1000, b"%032x" % i,
                   "timeout" if i == 5 else None)
    log.flush()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["path"] for e in lines] == [f"/p/{i}" for i in range(30)]
    assert [e["client"] for e in lines] == [None if i == 3 else f"10.0.0.{i % 3}"
                                            for i in range(30)]
    assert [e["status"] for e in lines] == [200 + i for i in range(30)]
    assert [e["duration_ms"] for e in lines] == [float(i) for i in range(30)]
    assert [e.get("error") for e in lines] == [("timeout" if i == 5 else None) for i in range(30)]
    assert lines[7]["request_id"] == f"{7:032x}" and lines[8]["method"] == "POST"
