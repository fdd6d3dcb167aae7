"""extracted/notifications/capture.py: the service's capture for the way back (pure parts;
the running capture is exercised in tests/sinks/test_reverse.py and the walkthrough)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdc.sinks.mapping import MappingError
from extracted.notifications.capture import capture_config, owned_service_tables

PLAN = {"kafka": {"topic_prefix": "shop"}, "cdc": {"heartbeat_interval_s": 3},
        "services": {"notifications": {"data": {
            "tables": {"notifications_notification": "notification",
                       "accounts_customer": "customer"},
            "owned": ["notifications_notification"]}}}}


@pytest.mark.parametrize(("url", "schema"), [("sqlite:///var/n.sqlite3", "main"),
                                             ("postgresql://app@db/n", "public")])
def test_capture_config_covers_the_owned_tables_only(url: str, schema: str) -> None:
    config = capture_config(PLAN, database_url=url, bootstrap_servers="k:9092", http_port=9466,
                            state_dir=Path("/srv/var/cdc-notifications"))
    assert config.tables == (f"{schema}.notification",)  # not the read-only customer
    assert config.topic_prefix == "shop.notifications"
    assert config.slot == config.publication == "strangler_shop_notifications"
    assert config.snapshot_mode == "no_data"  # the monolith has everything older
    assert config.heartbeat_interval_s == 3
    assert config.offsets == {"backend": "file",
                              "path": "/srv/var/cdc-notifications/offsets.json"}


def test_no_owned_tables_means_nothing_to_capture() -> None:
    plan = {"services": {"notifications": {"data": {"tables": {"a": "b"}}}}}
    assert owned_service_tables(plan) == ()
    with pytest.raises(MappingError, match="not in the plan"):
        owned_service_tables({"services": {}})


def test_an_offset_from_an_earlier_database_at_the_same_path_is_dropped(
        tmp_path: Path) -> None:
    import sqlalchemy as sa

    from cdc.offsets import open_store
    from cdc.sources.sqlite.source import SqliteSourceConfig
    from extracted.notifications.capture import forget_foreign_offset, install_capture
    from extracted.notifications.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'n.sqlite3'}"
    upgrade(url)
    install_capture(url, ("notification",))
    config = capture_config(PLAN, database_url=url, bootstrap_servers="k:9092", http_port=0,
                            state_dir=tmp_path / "cdc")
    name = SqliteSourceConfig(database=tmp_path / "n.sqlite3", topic_prefix="shop.notifications"
                              ).offset_name
    store = open_store(config.offsets, default_dir=config.state_dir)
    assert not forget_foreign_offset(config)  # nothing stored yet
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO notification (id, customer_id, channel, template, "
                             "subject, body, status, created_at) VALUES (1, 1, 'email', '', "
                             "'s', 'b', 'sent', '2026-01-01 00:00:00')"))
    engine.dispose()
    store.save(name, {"changelog_id": 1})
    assert not forget_foreign_offset(config)  # within this database's changelog: kept
    store.save(name, {"changelog_id": 40})  # the old file had 40 changes
    assert forget_foreign_offset(config)
    assert store.load(name) is None
