"""SQLite capture cost and relay speed.

    python -m bench cdc_sqlite [--customers 500 --products 200 --orders 2000] [--rounds 3]
                               [--writes 1000] [--no-relay]

Cost to the monolith (the issue asks that it be unaffected beyond the trigger write).
Each variant runs on a freshly migrated SQLite file, rounds interleaved, median kept:

* ``reference``: the monolith without the capture app (settings minus
  ``monolith.capture``) — nothing of ours on the write path;
* ``app_idle``: the capture app present but capture not installed (the txid wrapper
  looks for ``strangler_txn`` and finds none);
* ``captured``: capture installed for every table the seed writes (triggers + one txid
  bump per transaction).

Workloads: ``python -m monolith seed --no-migrate`` (its own ``seconds``), and
``--writes`` request-style autocommit writes through the ORM (create + update of a
category each, so two transactions per write). On a loaded machine separate processes
are noisy, so ``txid_wrapper_with_vs_without`` also times the txid wrapper alone: one
process, rounds alternating with and without it on the same connection.

Relay speed: the ``captured`` seed's changelog relayed to the embedded broker
(``relay``: read, render, encode, produce, wait for acks, record offset, prune; topics
created beforehand) next to ``read_only`` — reading and JSON-parsing the same changelog
rows, nothing else.
Prints JSON with the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CAPTURED = [
    "accounts_customer", "catalog_category", "catalog_product", "orders_order",
    "orders_orderline", "orders_payment", "notifications_notification",
]
NO_APP_SETTINGS = (
    "from monolith.config.settings import *  # noqa: F403\n"
    "INSTALLED_APPS = [a for a in INSTALLED_APPS if a != 'monolith.capture']  # noqa: F405\n"
)
WRITES = """
import time
from monolith.catalog.models import Category
t0 = time.perf_counter()
for i in range({n}):
    c = Category.objects.create(name=f"w{{i}}", slug=f"bench-w-{{i}}")
    Category.objects.filter(id=c.id).update(description="x")
print("SECONDS", time.perf_counter() - t0)
"""


WRAPPER_AB = """
import statistics, time
from django.db import connection
from monolith.catalog.models import Category
from monolith.capture.txn import TxidWrapper
connection.ensure_connection()
ours = [w for w in connection.execute_wrappers if isinstance(w, TxidWrapper)]
def run(tag):
    t0 = time.perf_counter()
    for i in range({n}):
        c = Category.objects.create(name=tag, slug=f"{{tag}}-{{i}}")
        Category.objects.filter(id=c.id).update(description="x")
    return time.perf_counter() - t0
res = {{"with": [], "without": []}}
for r in range({rounds}):
    order = [("with", ours), ("without", [])]
    for name, wrappers in (order if r % 2 == 0 else order[::-1]):
        connection.execute_wrappers[:] = wrappers
        res[name].append(run(f"ab-{{name}}-{{r}}"))
print("AB", statistics.median(res["with"]) / statistics.median(res["without"]))
"""


def _env(db: Path, workdir: Path, variant: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "LOG_LEVEL": "WARNING",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{workdir}"}
    if variant == "reference":
        env["DJANGO_SETTINGS_MODULE"] = "bench_no_capture_settings"
    return env


def _monolith(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "monolith", *args], env=env, cwd=cwd,
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"monolith {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def _fresh(workdir: Path, name: str, variant: str) -> tuple[Path, dict[str, str]]:
    db = workdir / f"{name}.sqlite3"
    env = _env(db, workdir, variant)
    _monolith(["migrate", "-v", "0"], env, workdir)
    if variant == "captured":
        args = ["manage", "capture", "install"]
        for table in CAPTURED:
            args += ["--table", table]
        _monolith(args, env, workdir)
    return db, env


def seed_seconds(workdir: Path, run: str, variant: str, sizes: list[str]) -> tuple[float, Path]:
    db, env = _fresh(workdir, f"seed-{variant}-{run}", variant)
    out = _monolith(["seed", "--no-migrate", *sizes], env, workdir)
    return float(json.loads(out.strip().splitlines()[-1])["seconds"]), db


def writes_seconds(workdir: Path, run: str, variant: str, n: int) -> float:
    _, env = _fresh(workdir, f"writes-{variant}-{run}", variant)
    out = _monolith(["manage", "shell", "-c", WRITES.format(n=n)], env, workdir)
    return float(out.split("SECONDS")[-1].strip())


def wrapper_ratio(workdir: Path, variant: str, n: int, rounds: int) -> float:
    """Same process, rounds alternating with and without the txid wrapper: its cost
    alone, robust to machine load (the triggers fire in both halves when captured)."""
    _, env = _fresh(workdir, f"ab-{variant}", variant)
    out = _monolith(["manage", "shell", "-c", WRAPPER_AB.format(n=n, rounds=2 * rounds)],
                    env, workdir)
    return round(float(out.split("AB")[-1].strip()), 3)


def relay_speed(db: Path) -> dict[str, Any]:
    from cdc.embedded_broker import EmbeddedBroker
    from cdc.offsets import MemoryOffsetStore
    from cdc.sources.sqlite import SqliteSourceConfig, open_source
    from cdc.sources.sqlite.render import parse_image
    from cdc.sources.sqlite.triggers import installed_tables

    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT count(*) FROM strangler_changelog").fetchone()[0]
    t0 = time.perf_counter()
    for before, after in conn.execute("SELECT before, after FROM strangler_changelog"):
        parse_image(before)
        parse_image(after)
    read_only = time.perf_counter() - t0
    conn.close()
    with EmbeddedBroker() as broker:
        config = SqliteSourceConfig(database=db, topic_prefix="bench", snapshot_mode="no_data",
                                    batch_size=5000)
        source = open_source(config, bootstrap_servers=broker.bootstrap_servers)
        source.offsets = MemoryOffsetStore()
        source.relay.offsets = source.offsets
        source.offsets.save(config.offset_name, {"changelog_id": 0})
        producer = source.publisher.producer  # type: ignore[attr-defined]
        for table in installed_tables(source.conn):  # topic creation is not relaying
            producer.ensure_topic(f"bench.main.{table}")
        t0 = time.perf_counter()
        while source.relay.step():
            pass
        relay = time.perf_counter() - t0
        source.close()
    return {
        "changelog_rows": rows,
        "relay_events_per_s": round(rows / relay),
        "read_only_rows_per_s": round(rows / read_only),
        "relay_vs_read_only": round(read_only / relay, 3),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench cdc_sqlite")
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-relay", action="store_true")
    args = parser.parse_args(argv)
    sizes = ["--customers", str(args.customers), "--products", str(args.products),
             "--orders", str(args.orders)]
    variants = ["reference", "app_idle", "captured"]
    seed: dict[str, list[float]] = {v: [] for v in variants}
    writes: dict[str, list[float]] = {v: [] for v in variants}
    captured_db: Path | None = None
    with tempfile.TemporaryDirectory(prefix="bench-cdc-sqlite-") as tmp:
        workdir = Path(tmp)
        (workdir / "bench_no_capture_settings.py").write_text(NO_APP_SETTINGS)
        for run in range(args.rounds):
            for variant in variants:
                seconds, db = seed_seconds(workdir, str(run), variant, sizes)
                seed[variant].append(seconds)
                if variant == "captured":
                    captured_db = db
                writes[variant].append(writes_seconds(workdir, str(run), variant, args.writes))
        wrapper = {v: wrapper_ratio(workdir, v, args.writes // 2, args.rounds)
                   for v in ("app_idle", "captured")}
        relay = relay_speed(captured_db) if captured_db and not args.no_relay else None
    med = {k: {"seed_s": statistics.median(seed[k]), "writes_s": statistics.median(writes[k])}
           for k in variants}
    ref = med["reference"]
    result = {
        "bench": "cdc_sqlite",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform(), "sqlite": sqlite3.sqlite_version},
        "sizes": {"customers": args.customers, "products": args.products,
                  "orders": args.orders, "writes": args.writes, "rounds": args.rounds},
        "median_seconds": med,
        "seed_ratio_vs_reference": {
            k: round(med[k]["seed_s"] / ref["seed_s"], 3) for k in variants
        },
        "writes_ratio_vs_reference": {
            k: round(med[k]["writes_s"] / ref["writes_s"], 3) for k in variants
        },
        "write_transactions_per_s": {
            k: round(2 * args.writes / med[k]["writes_s"]) for k in variants
        },
        "txid_wrapper_with_vs_without": wrapper,
        "relay": relay,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
