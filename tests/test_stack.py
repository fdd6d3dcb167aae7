"""strangler_proxy/stack.py: what `strangle up` runs for a plan (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from strangler_proxy.plan.io import parse_plan_bytes
from strangler_proxy.plan.model import Plan
from strangler_proxy.stack import (
    StackError,
    StackSettings,
    cdc_http_port,
    components,
    embedded_kafka,
    stack_env,
)

PLAN = b"""
version: 1
monolith: {url: "http://127.0.0.1:8001"}
kafka: {bootstrap_servers: embedded, topic_prefix: shop}
cdc: {http: {port: 9465}}
services:
  notifications:
    url: http://127.0.0.1:8101
    routes: [{path: /api/notifications, methods: [GET]}]
    stage: shadow
"""


def _plan(text: bytes = PLAN) -> Plan:
    return parse_plan_bytes(text, Path("plan.yaml")).plan


def _settings(**kw: object) -> StackSettings:
    base: dict[str, object] = dict(var_dir=Path("/srv/var"), plan_path=Path("/srv/plan.yaml"),
                                   host="127.0.0.1", port=8000, bootstrap="127.0.0.1:9092",
                                   sink_port=9310, broker_port=9092, fresh_broker=True)
    return StackSettings(**{**base, **kw})  # type: ignore[arg-type]


def _env() -> dict[str, str]:
    return stack_env({}, _settings(), "tok")


def test_components_start_in_dependency_order_with_their_health_checks() -> None:
    stack = components(_plan(), _settings(), _env())
    assert [c.name for c in stack] == ["broker", "monolith", "notifications", "cdc", "sink",
                                       "retry", "proxy"]
    by_name = {c.name: c for c in stack}
    assert by_name["broker"].tcp_port == 9092
    assert by_name["monolith"].health_url == "http://127.0.0.1:8001/healthz"
    assert by_name["monolith"].argv[-2:] == ("--port", "8001")
    assert by_name["notifications"].health_url == "http://127.0.0.1:8101/healthz"
    assert by_name["cdc"].health_url == "http://127.0.0.1:9465/healthz"
    assert by_name["proxy"].health_url == "http://127.0.0.1:8000/_strangler/ready"
    sink = by_name["sink"].argv
    assert sink[sink.index("--schema") + 1] == "main"  # the SQLite source's schema
    assert sink[sink.index("--bootstrap-servers") + 1] == "127.0.0.1:9092"
    assert "--from-beginning" in sink
    assert all(c.essential for c in stack)


def test_traffic_is_optional_and_not_essential() -> None:
    stack = components(_plan(), _settings(traffic=True, traffic_workers=3), _env())
    traffic = stack[-1]
    assert traffic.name == "traffic" and not traffic.essential
    assert traffic.argv[traffic.argv.index("--url") + 1] == "http://127.0.0.1:8000"
    assert traffic.argv[traffic.argv.index("--workers") + 1] == "3"


def test_no_broker_component_for_an_external_kafka() -> None:
    stack = components(_plan(), _settings(broker_port=None, fresh_broker=False), _env())
    assert "broker" not in [c.name for c in stack]
    assert "--from-beginning" not in stack[3].argv


def test_a_port_used_twice_is_refused_naming_both() -> None:
    with pytest.raises(StackError, match="the monolith and the proxy would both listen on "
                                         "port 8001"):
        components(_plan(), _settings(port=8001), _env())
    with pytest.raises(StackError, match=r"the sink and the CDC runner .* cdc\.http\.port"):
        components(_plan(), _settings(sink_port=9465), _env())


def test_the_plan_must_have_notifications() -> None:
    text = PLAN.replace(b"notifications:", b"billing:").replace(b"/api/notifications",
                                                                 b"/api/billing")
    with pytest.raises(StackError, match=r"no services\.notifications"):
        components(_plan(text), _settings(), _env())


def test_env_keeps_what_the_user_set_and_pins_what_the_stack_decides() -> None:
    env = stack_env({"DATABASE_URL": "postgresql://db/shop", "KAFKA_BOOTSTRAP_SERVERS": "x:1",
                     "STRANGLER_ADMIN_TOKEN": "old"}, _settings(), "tok")
    assert env["DATABASE_URL"] == "postgresql://db/shop"
    assert env["NOTIFICATIONS_DATABASE_URL"] == "sqlite:////srv/var/notifications.sqlite3"
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092"
    assert env["STRANGLER_ADMIN_TOKEN"] == "tok"
    assert env["STRANGLE_PLAN"] == "/srv/plan.yaml"
    assert env["STRANGLER_SINK"] == "strangler_proxy.shadow.sink:engine_from_plan"
    sink = components(_plan(), _settings(), env)[4].argv
    assert sink[sink.index("--schema") + 1] == "public"  # PostgreSQL monolith


def test_embedded_kafka_unless_the_environment_names_a_broker() -> None:
    assert embedded_kafka(_plan(), {})
    assert not embedded_kafka(_plan(), {"KAFKA_BOOTSTRAP_SERVERS": "k:9092"})
    assert not embedded_kafka(_plan(PLAN.replace(b"embedded", b"k:9092")), {})
    assert cdc_http_port(_plan()) == 9465
    assert cdc_http_port(_plan(PLAN.replace(b"cdc: {http: {port: 9465}}\n", b""))) == 9465


OWNED = PLAN + b"""    data:
      tables: {notifications_notification: notification, accounts_customer: customer}
      owned: [notifications_notification]
"""


def test_owned_tables_add_the_way_back_sink_then_capture() -> None:
    settings = _settings(back_capture_port=9466, back_sink_port=9311)
    stack = components(_plan(OWNED), settings, _env())
    assert [c.name for c in stack] == ["broker", "monolith", "notifications", "cdc", "sink",
                                       "sink-back", "capture-back", "retry", "proxy"]
    by_name = {c.name: c for c in stack}
    back = by_name["sink-back"].argv
    assert back[1:3] == ("-m", "cdc.sinks.reverse") and "--from-beginning" in back
    assert back[back.index("--service") + 1] == "notifications"
    assert by_name["sink-back"].health_url == "http://127.0.0.1:9311/healthz"
    capture = by_name["capture-back"].argv
    assert capture[capture.index("--state-dir") + 1] == "/srv/var/cdc-notifications"
    assert by_name["capture-back"].health_url == "http://127.0.0.1:9466/healthz"
    # no owned tables: one way only, as before
    assert "sink-back" not in [c.name for c in components(_plan(), settings, _env())]


def test_owned_tables_on_postgresql_read_the_public_schema() -> None:
    env = {**_env(), "NOTIFICATIONS_DATABASE_URL": "postgresql://app@db/notifications"}
    stack = components(_plan(OWNED), _settings(back_capture_port=9466, back_sink_port=9311),
                       env)
    back = next(c for c in stack if c.name == "sink-back").argv
    assert back[back.index("--schema") + 1] == "public"


def test_the_way_back_ports_must_not_clash() -> None:
    with pytest.raises(StackError, match="the way-back sink and the sink would both"):
        components(_plan(OWNED), _settings(back_capture_port=9466, back_sink_port=9310), _env())
