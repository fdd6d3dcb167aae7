import time
from pathlib import Path

import pytest

from strangler_proxy.plan.io import load_plan
from strangler_proxy.shadow.sink import (
    PlanRules,
    UnknownService,
    engine_from_plan,
    service_report,
    service_report_html,
    service_rules,
    store_settings,
)

from .factories import exchange, obs

PLAN = """\
version: 1
monolith: {url: http://127.0.0.1:8000}
shadow_store: {url: "sqlite:///var/s.db", max_samples: 7, retention_days: 2}
services:
  notifications:
    url: http://127.0.0.1:8101
    routes:
      - {path: /api/notifications, methods: [GET]}
      - path: "/api/notifications/{id}"
        methods: [GET]
        shadow: {ignore: ["$.etag"], compare: {status_only: true}}
    stage: shadow
    shadow: {ignore: ["$.id"], noise_sample: 0.5, compare: {list_keys: {"$.results": id}}}
"""


def test_rules_and_settings_from_the_plan(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    loaded = load_plan(tmp_path / "plan.yaml")
    rules = service_rules(loaded.plan.services["notifications"])
    assert rules.default.is_ignored("$.id") and rules.default.list_key("$.results") == "id"
    assert rules.default.noise.min_samples == 10
    route = rules.for_route("/api/notifications/{id}")
    assert route.status_only and route.is_ignored("$.etag") and route.is_ignored("$.id")
    url, max_samples, retention = store_settings(loaded.plan, loaded.path)
    assert url == f"sqlite:///{tmp_path}/var/s.db"
    assert (max_samples, retention) == (7, 2 * 86400)
    lookup = PlanRules(lambda: loaded)
    assert lookup("notifications", "/api/notifications/{id}").status_only
    assert not lookup("other", "/x").status_only


def test_engine_and_admin_report_from_the_plan(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    loaded = load_plan(tmp_path / "plan.yaml")
    engine = engine_from_plan(lambda: loaded, flush_interval_s=0.02)
    assert engine.max_samples == 7
    engine.submit(
        exchange(
            obs({"id": 1, "title": "a"}),
            obs({"id": 2, "title": "b"}),
            service="notifications",
            route="/api/notifications",
            ts=time.time(),
        )
    )
    assert engine.flush()
    engine.close()
    report = service_report(loaded, "notifications")
    assert report.endpoints[0].pending_paths == ("$.title",)
    page = service_report_html(loaded, "notifications")
    assert page.startswith("<!doctype html>") and "$.title" in page
    with pytest.raises(UnknownService):
        service_report(loaded, "nope")


def test_invalid_plan_rules_fall_back_to_defaults_with_a_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from strangler_proxy.plan.parse import parse_plan
    from strangler_proxy.shadow import sink
    from strangler_proxy.shadow.sink import PlanRules

    plan = parse_plan(
        "version: 1\nmonolith: {url: http://127.0.0.1:1}\nservices:\n  svc:\n"
        "    url: http://127.0.0.1:2\n    routes: [/x]\n"
    )

    def bad(service: object) -> None:
        raise ValueError("shadow.compare.bogus: unknown key")

    monkeypatch.setattr(sink, "service_rules", bad)

    class Loaded:
        sha256 = "x"

    loaded = Loaded()
    loaded.plan = plan  # type: ignore[attr-defined]
    rules = PlanRules(lambda: loaded)  # type: ignore[arg-type,return-value]
    assert not rules("svc", "/x").status_only
    assert "invalid shadow rules" in caplog.text
