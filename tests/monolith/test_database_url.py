from __future__ import annotations

from pathlib import Path

import pytest

from monolith.config.database_url import DatabaseUrlError, parse_database_url

BASE = Path("/srv/shop")


def test_sqlite_relative_absolute_and_memory() -> None:
    rel = parse_database_url("sqlite:///var/monolith.sqlite3", base_dir=BASE)
    assert rel["ENGINE"] == "django.db.backends.sqlite3"
    assert rel["NAME"] == "/srv/shop/var/monolith.sqlite3"
    assert rel["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert parse_database_url("sqlite:////tmp/x.db", base_dir=BASE)["NAME"] == "/tmp/x.db"
    assert parse_database_url("sqlite:///:memory:", base_dir=BASE)["NAME"] == ":memory:"


def test_postgresql_with_credentials_port_and_options() -> None:
    db = parse_database_url("postgresql://app:p%40ss@db.internal:6543/shop?sslmode=require",
                            base_dir=BASE)
    assert db == {
        "ENGINE": "django.db.backends.postgresql", "NAME": "shop", "USER": "app",
        "PASSWORD": "p@ss", "HOST": "db.internal", "PORT": "6543",
        "OPTIONS": {"sslmode": "require"},
    }
    short = parse_database_url("postgres://localhost/shop", base_dir=BASE)
    assert (short["HOST"], short["PORT"], short["USER"]) == ("localhost", "", "")


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite://", "postgresql://host/", "nonsense"])
def test_bad_urls_are_rejected_with_a_reason(url: str) -> None:
    with pytest.raises(DatabaseUrlError):
        parse_database_url(url, base_dir=BASE)
