"""strangler_proxy/dashboard.py: the status view's figures and rendering."""

from __future__ import annotations

import re
from pathlib import Path

from strangler_proxy.dashboard import Dashboard, Probe, render_table, requests_total
from strangler_proxy.metrics import ProxyMetrics

SNAP = {
    "ts": 0,
    "components": {"monolith": {"pid": 11, "up": True}, "sink": {"pid": 12, "up": False}},
    "proxy": {"requests": 1200, "req_per_s": 41.25, "errors_5xx": 2},
    "service": {"name": "notifications", "stage": "canary", "percent": 10.0},
    "shadow": {"samples": 812, "mismatch_rate": 0.0123, "error_rate": 0.0},
    "cdc": {"state": "streaming", "lag_s": 0.25, "sink_lag_s": 1.5, "applied": 9,
            "dead_letters": 3},
    "traffic": {"requests": 3100, "failed": 0},
}


def test_table_shows_each_component_and_the_migration_figures() -> None:
    text = render_table(SNAP, title="strangle up")
    lines = text.splitlines()
    assert lines[0].startswith("strangle up")
    assert re.search(r"^monolith +11 +up$", text, re.M)
    assert re.search(r"^sink +12 +DOWN$", text, re.M)
    assert "41.2 req/s, 1200 requests, 2 5xx" in text
    assert "stage canary 10%" in text
    assert "812 samples, mismatch 1.23%" in text
    assert "relay streaming, lag 0.2 s; sink lag 1.5 s, 3 dead letters" in text
    assert "3100 requests, 0 failed" in text
    assert "way back" not in text  # one-way stacks show no way-back line
    both = render_table({**SNAP, "way_back": {"state": "streaming", "lag_s": 0.5,
                                              "sink_lag_s": 2.0, "dead_letters": 1}}, title="t")
    assert "capture streaming, lag 0.5 s; sink-back lag 2.0 s, 1 dead letters" in both


def test_unknown_figures_render_as_dashes_not_errors() -> None:
    text = render_table({"ts": 0, "components": {"proxy": {"pid": None, "up": False}},
                         "proxy": None, "service": None, "shadow": None, "cdc": {},
                         "traffic": None}, title="t")
    assert re.search(r"^proxy +- +DOWN$", text, re.M)
    assert "- req/s" in text and "stage ?" in text and "relay ?" in text
    assert "traffic" not in text.split("\n\n")[-1]


def test_requests_total_reads_the_proxy_exposition() -> None:
    metrics = ProxyMetrics()
    for status in (200, 200, 404, 502):
        metrics.observe("notifications", "service", status, 0.01)
    metrics.observe("", "monolith", 503, 0.01)
    total, errors = requests_total(metrics.render().decode())
    assert (total, errors) == (5, 2)


def test_snapshot_survives_every_source_being_down(tmp_path: Path) -> None:
    dead = "http://127.0.0.1:9"
    board = Dashboard(Probe(plan_path=tmp_path / "missing.yaml", proxy_url=dead, cdc_url=dead,
                            sink_url=dead, traffic_stats=tmp_path / "traffic.json"))
    snap = board.snapshot({"proxy": (None, False)})
    assert snap["proxy"] is None and snap["service"] is None and snap["shadow"] is None
    assert snap["cdc"]["state"] is None and snap["traffic"] is None
    assert snap["components"] == {"proxy": {"pid": None, "up": False}}
    assert "way_back" not in snap
    back = Dashboard(Probe(plan_path=tmp_path / "missing.yaml", proxy_url=dead, cdc_url=dead,
                           sink_url=dead, traffic_stats=None, back_capture_url=dead,
                           back_sink_url=dead)).snapshot({})
    assert back["way_back"] == {"state": None, "lag_s": None, "sink_lag_s": None,
                                "applied": None, "dead_letters": None}
