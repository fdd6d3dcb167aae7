"""`python -m monolith` commands against fresh databases: migrate, check, seed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.support.monolith_server import monolith_env, run_monolith, sqlite_url

APPS = ("accounts", "catalog", "notifications", "orders", "sessions")


def fresh_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest,
                   name: str = "fresh") -> str:
    if backend == "postgres":
        return str(request.getfixturevalue("postgres").create_database(f"mig_{name}"))
    return sqlite_url(tmp_path / f"{name}.sqlite3")


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres",
                                                            marks=pytest.mark.postgres)])
def test_migrations_apply_from_zero_and_check_passes(backend: str, tmp_path: Path,
                                                     request: pytest.FixtureRequest) -> None:
    env = monolith_env(fresh_database(backend, tmp_path, request), tmp_path)
    run_monolith(["migrate"], env, cwd=tmp_path)
    shown = run_monolith(["manage", "showmigrations"], env, cwd=tmp_path).stdout
    assert "[ ]" not in shown
    for app in APPS:
        assert app in shown
    check = run_monolith(["check"], env, cwd=tmp_path)
    assert "No changes detected" in check.stdout
    # Reversible: unapplying accounts and catalog takes their dependents (orders,
    # notifications) with them; then everything applies again.
    run_monolith(["manage", "migrate", "accounts", "zero", "-v", "0"], env, cwd=tmp_path)
    run_monolith(["manage", "migrate", "catalog", "zero", "-v", "0"], env, cwd=tmp_path)
    shown = run_monolith(["manage", "showmigrations", *APPS[:4]], env, cwd=tmp_path).stdout
    assert "[X]" not in shown
    run_monolith(["migrate", "-v", "0"], env, cwd=tmp_path)


def test_check_fails_on_a_broken_database_url(tmp_path: Path) -> None:
    env = monolith_env("mysql://nope/x", tmp_path)
    result = run_monolith(["check"], env, cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert "unsupported DATABASE_URL scheme" in result.stderr


def test_default_database_is_var_sqlite_under_the_working_directory(tmp_path: Path) -> None:
    env = monolith_env("", tmp_path)
    env.pop("DATABASE_URL")
    run_monolith(["migrate", "-v", "0"], env, cwd=tmp_path)
    db = tmp_path / "var" / "monolith.sqlite3"
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"accounts_customer", "catalog_product", "orders_order",
            "notifications_notification"} <= tables


def dump(env: dict[str, str], cwd: Path) -> str:
    return run_monolith(["manage", "dumpdata", "accounts", "catalog", "orders",
                         "notifications.notification", "--indent", "0"], env, cwd=cwd).stdout


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres",
                                                            marks=pytest.mark.postgres)])
def test_seed_is_deterministic_and_refuses_a_non_empty_database(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    args = ["seed", "--customers", "30", "--products", "12", "--orders", "40", "--seed", "7"]
    one = monolith_env(fresh_database(backend, tmp_path, request, "one"), tmp_path)
    two = monolith_env(sqlite_url(tmp_path / "two.sqlite3"), tmp_path)
    result = run_monolith(args, one, cwd=tmp_path)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["customers"] == 30 and summary["orders"] == 40
    assert summary["order_lines"] >= 40 and summary["notifications"] == 40
    assert "seeding" in result.stderr
    run_monolith(args, two, cwd=tmp_path)
    assert dump(one, tmp_path) == dump(two, tmp_path)

    other = monolith_env(sqlite_url(tmp_path / "other.sqlite3"), tmp_path)
    run_monolith([*args[:-1], "8"], other, cwd=tmp_path)
    assert dump(other, tmp_path) != dump(one, tmp_path)

    again = run_monolith(args, one, cwd=tmp_path, check=False)
    assert again.returncode == 1
    assert "already has shop data" in again.stderr
    skipped = run_monolith([*args, "--if-empty"], one, cwd=tmp_path)
    assert json.loads(skipped.stdout.strip().splitlines()[-1])["seeded"] is False
