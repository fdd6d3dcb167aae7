from __future__ import annotations

from pathlib import Path

import pytest

from cdc.config import load_config, parse_config, pg_dsn
from cdc.errors import ConfigError

PLAN = {
    "kafka": {"bootstrap_servers": "embedded", "topic_prefix": "shop"},
    "services": {
        "notifications": {"data": {"owner": "monolith",
                                   "tables": {"notifications_notification": "notification"}}},
        "catalog": {"data": {"tables": {"catalog.product": "product"}}},
        "orders": {"data": {"owner": "service", "tables": {"orders_order": "order"}}},
        "web": {"url": "http://x"},
    },
}
ENV = {"DATABASE_URL": "postgresql+psycopg2://app@db:5432/shop"}


def test_captured_tables_are_monolith_owned_data_tables() -> None:
    cfg = parse_config(PLAN, ENV)
    assert cfg.tables == ("public.notifications_notification", "catalog.product")
    assert cfg.embedded_kafka and cfg.topic_prefix == "shop"
    assert (cfg.slot, cfg.publication) == ("strangler_shop", "strangler_shop")
    assert cfg.snapshot_mode == "initial" and cfg.schemas_enable


def test_a_service_owner_still_gets_the_tables_it_only_reads() -> None:
    plan = {**PLAN, "services": {"orders": {"data": {
        "owner": "service", "owned": ["orders_order"],
        "tables": {"orders_order": "order", "accounts_customer": "customer"}}}}}
    assert parse_config(plan, ENV).tables == ("public.accounts_customer",)
    two_way = {**PLAN, "services": {"orders": {"data": {
        "owned": ["orders_order"], "tables": {"orders_order": "order"}}}}}
    assert parse_config(two_way, ENV).tables == ("public.orders_order",)  # owner: monolith


def test_environment_overrides() -> None:
    cfg = parse_config({**PLAN, "cdc": {"database_url": "postgresql://plan/db"}},
                       {**ENV, "KAFKA_BOOTSTRAP_SERVERS": "k:9092"})
    assert cfg.database_url == "postgresql://plan/db"
    assert cfg.bootstrap_servers == "k:9092"
    assert pg_dsn("postgresql+psycopg2://app@db:5432/shop") == "postgresql://app@db:5432/shop"


@pytest.mark.parametrize(
    ("cdc", "env", "match"),
    [
        ({"snapshot_mode": "always"}, ENV, "snapshot_mode: 'always' is not one of"),
        ({"heartbeat_interval_s": -1}, ENV, "heartbeat_interval_s: expected a number"),
        ({"slott": "x"}, ENV, r"unknown keys \['slott'\]"),
        ({}, {}, "no source database"),
        ({"database_url": "sqlite:///x.db"}, {}, "needs a PostgreSQL database URL"),
        ({"source": "sqlite"}, ENV, "captures postgres"),
    ],
)
def test_invalid_settings_are_named(cdc: dict[str, object], env: dict[str, str],
                                    match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config({**PLAN, "cdc": cdc}, env)


def test_bad_prefix_and_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="topic_prefix"):
        parse_config({"kafka": {"topic_prefix": "a b"}}, ENV)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml", ENV)
    bad = tmp_path / "plan.yaml"
    bad.write_text("kafka: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, ENV)
    good = tmp_path / "good.yaml"
    good.write_text("kafka: {topic_prefix: shop}\ncdc: {state_dir: st}\n")
    assert load_config(good, ENV).state_dir == tmp_path / "st"
