"""monolith/capture: the Django side — command, post_migrate reinstall, txid wrapper."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from tests.cdc_sqlite.shop import ROOT, Shop
from tests.support.monolith_server import MonolithFailed, monolith_env, run_monolith


def changelog(shop: Shop, after: int = 0) -> list[tuple[Any, ...]]:
    return shop.sql(
        "SELECT id, txid, \"table\", op, json_extract(coalesce(after, before), '$.name')"
        " FROM strangler_changelog WHERE id > ? ORDER BY id",
        after,
    )


def strangler_objects(shop: Shop) -> list[str]:
    return [r[0] for r in shop.sql("SELECT name FROM sqlite_master WHERE name LIKE 'strangler%'")]


def test_each_django_transaction_gets_one_txid(tmp_path: Path) -> None:
    shop = Shop(tmp_path).setup()
    shop.django(textwrap.dedent("""
        from django.db import transaction
        from monolith.catalog.models import Category
        a = Category.objects.create(name="A", slug="a")          # autocommit, RETURNING
        assert a.id
        Category.objects.filter(id=a.id).update(name="B")        # autocommit
        with transaction.atomic():
            Category.objects.create(name="C", slug="c")
            try:
                with transaction.atomic():                        # savepoint rolled back
                    Category.objects.create(name="D", slug="d")
                    raise ValueError
            except ValueError:
                pass
            Category.objects.create(name="E", slug="e")
        try:
            with transaction.atomic():                            # rolled back
                Category.objects.create(name="F", slug="f")
                raise ValueError
        except ValueError:
            pass
        Category.objects.filter(slug__in=["c", "e"]).delete()    # one transaction
    """))
    rows = [(op, name, txid) for _, txid, _, op, name in changelog(shop)]
    assert [(op, name) for op, name, _ in rows] == [
        ("c", "A"), ("u", "B"), ("c", "C"), ("c", "E"), ("d", "C"), ("d", "E")
    ]
    txids = [t for _, _, t in rows]
    assert txids[2] == txids[3] and txids[4] == txids[5]
    assert len({txids[0], txids[1], txids[2], txids[4]}) == 4
    assert txids == sorted(txids)


GADGET_APP = {
    "gadgets/__init__.py": "",
    "gadgets/models.py": """
        from django.db import models

        class Gadget(models.Model):
            name = models.CharField(max_length=20)
            weight = models.DecimalField(max_digits=6, decimal_places=3, null=True)

            class Meta:
                app_label = "gadgets"
    """,
    "gadgets/migrations/__init__.py": "",
    "gadgets/migrations/0001_initial.py": """
        from django.db import migrations, models

        class Migration(migrations.Migration):
            initial = True
            operations = [migrations.CreateModel("Gadget", [
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=10)),
            ])]
    """,
    "gadgets/migrations/0002_rebuild.py": """
        from django.db import migrations, models

        class Migration(migrations.Migration):
            dependencies = [("gadgets", "0001_initial")]
            operations = [
                migrations.AlterField("gadget", "name", models.CharField(max_length=20)),
                migrations.AddField("gadget", "weight",
                                    models.DecimalField(max_digits=6, decimal_places=3, null=True)),
            ]
    """,
    "gadget_settings.py": """
        from monolith.config.settings import *  # noqa: F403
        INSTALLED_APPS = [*INSTALLED_APPS, "gadgets"]  # noqa: F405
    """,
}


def test_triggers_come_back_after_a_table_rebuild_migration(tmp_path: Path) -> None:
    for name, text in GADGET_APP.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    shop = Shop(tmp_path)
    (tmp_path / "plan.yaml").write_text(
        "services:\n  gadgets:\n    data: {tables: {gadgets_gadget: gadget}}\n"
    )
    env = {**shop.env, "DJANGO_SETTINGS_MODULE": "gadget_settings",
           "PYTHONPATH": f"{ROOT}:{tmp_path}"}
    run_monolith(["manage", "migrate", "gadgets", "0001", "-v", "0"], env, cwd=tmp_path)
    run_monolith(["manage", "capture", "install"], env, cwd=tmp_path)
    shop.sql("INSERT INTO gadgets_gadget (name) VALUES ('old')")
    sql_before = shop.sql("SELECT sql FROM sqlite_master WHERE name = 'gadgets_gadget'")
    run_monolith(["manage", "migrate", "-v", "0"], env, cwd=tmp_path)  # rebuilds the table
    assert shop.sql("SELECT sql FROM sqlite_master WHERE name = 'gadgets_gadget'") != sql_before
    status = json.loads(run_monolith(["manage", "capture", "status"], env, cwd=tmp_path).stdout)
    assert status["problems"] == [] and status["tables"] == ["gadgets_gadget"]
    shop.sql("INSERT INTO gadgets_gadget (name, weight) VALUES ('new', 1.5)")
    rows = shop.sql("SELECT op, after FROM strangler_changelog ORDER BY id")
    assert [(op, json.loads(after)) for op, after in rows] == [
        ("c", {"id": 1, "name": "old"}),
        ("c", {"id": 2, "name": "new", "weight": 1.5}),
    ]
    spec = json.loads(shop.sql("SELECT spec FROM strangler_capture")[0][0])
    assert ["weight", "decimal", 3, 6, True, "decimal"] in spec["columns"]


def test_uninstall_refuses_unrelayed_changes_then_removes_everything(tmp_path: Path) -> None:
    shop = Shop(tmp_path).setup()
    shop.django("from monolith.catalog.models import Category\n"
                "Category.objects.create(name='A', slug='a')\n")
    with pytest.raises(MonolithFailed, match="1 captured changes were not relayed"):
        shop.manage("capture", "uninstall")
    result = shop.manage("capture", "uninstall", "--force")
    assert len(result["dropped_triggers"]) == 9
    assert strangler_objects(shop) == []
    shop.django("from monolith.catalog.models import Category\n"
                "Category.objects.create(name='B', slug='b')\n")
    assert shop.manage("capture", "status")["installed"] is False
    run_monolith(["migrate", "-v", "0"], shop.env, cwd=tmp_path)
    assert strangler_objects(shop) == []  # post_migrate does not re-add what was removed


def test_post_migrate_installs_fresh_only_when_enabled(tmp_path: Path) -> None:
    shop = Shop(tmp_path).setup(install=False)
    assert strangler_objects(shop) == []
    env = {**shop.env, "STRANGLE_CAPTURE": "on"}
    run_monolith(["migrate", "-v", "0"], env, cwd=tmp_path)
    assert shop.manage("capture", "status")["tables"] == [
        "catalog_category", "catalog_product", "notifications_notification"
    ]


def test_install_errors_are_clear(tmp_path: Path) -> None:
    shop = Shop(tmp_path).setup(install=False)
    with pytest.raises(MonolithFailed, match="'nope' does not exist"):
        shop.manage("capture", "install", "--table", "nope")
    with pytest.raises(MonolithFailed, match="no plan at"):
        shop.manage("capture", "install", "--plan", str(tmp_path / "missing.yaml"))
    assert strangler_objects(shop) == []


@pytest.mark.postgres
def test_capture_is_a_no_op_on_postgres(tmp_path: Path, postgres: Any) -> None:
    url = postgres.create_database("capture_noop")
    env = monolith_env(url, tmp_path, {"STRANGLE_CAPTURE": "on",
                                       "STRANGLE_PLAN": str(tmp_path / "plan.yaml")})
    (tmp_path / "plan.yaml").write_text(
        "services:\n  c:\n    data: {tables: {catalog_category: category}}\n"
    )
    run_monolith(["migrate", "-v", "0"], env, cwd=tmp_path)
    out = run_monolith(["manage", "capture", "install"], env, cwd=tmp_path).stdout
    assert json.loads(out)["changed"] is False
    run_monolith(["manage", "shell", "-c", "from monolith.catalog.models import Category\n"
                  "Category.objects.create(name='A', slug='a')\n"], env, cwd=tmp_path)
    with psycopg2.connect(postgres.dsn("capture_noop")) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'strangler%'")
        assert cur.fetchone() == (0,)
        cur.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'strangler%'")
        assert cur.fetchone() == (0,)
    conn.close()
