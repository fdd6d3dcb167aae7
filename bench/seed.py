"""Seed speed: ``python -m monolith seed`` vs raw sqlite3 ``executemany`` of the same rows.

    python -m bench seed [--customers 10000 --products 5000 --orders 50000] [--database-url URL]

The reference inserts exactly the rows the seed produced (read back from the seeded
database) into a second freshly migrated SQLite file with one ``executemany`` per table
in one transaction — the floor for this schema on this machine. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TABLES = ["accounts_customer", "catalog_category", "catalog_product", "orders_order",
          "orders_orderline", "orders_payment", "notifications_notification"]
BUDGET_S = 60.0


def _monolith(args: list[str], database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "monolith", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, check=True)


def raw_insert_seconds(source: Path, target: Path) -> tuple[float, int]:
    rows_total = 0
    with sqlite3.connect(source) as src:
        data = {t: src.execute(f"SELECT * FROM {t}").fetchall() for t in TABLES}
    conn = sqlite3.connect(target, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        for table, rows in data.items():
            if rows:
                marks = ",".join("?" * len(rows[0]))
                conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
                rows_total += len(rows)
        conn.execute("COMMIT")
        return time.perf_counter() - started, rows_total
    finally:
        conn.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench seed")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--database-url", help="seed this (empty) database instead of SQLite")
    args = parser.parse_args(argv)
    sizes = ["--customers", str(args.customers), "--products", str(args.products),
             "--orders", str(args.orders)]
    with tempfile.TemporaryDirectory(prefix="bench-seed-") as tmp:
        work = Path(tmp)
        seeded = work / "seeded.sqlite3"
        url = args.database_url or f"sqlite:///{seeded}"
        _monolith(["migrate", "-v", "0"], url, work)
        started = time.perf_counter()
        out = _monolith(["seed", "--no-migrate", *sizes], url, work)
        wall = time.perf_counter() - started
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        result: dict[str, object] = {
            "bench": "seed",
            "backend": "postgresql" if args.database_url else "sqlite",
            "sizes": {"customers": args.customers, "products": args.products,
                      "orders": args.orders},
            "rows": {k: v for k, v in summary.items()
                     if k not in {"seeded", "seed", "seconds"}},
            "seed_command_wall_s": round(wall, 3),
            "seed_insert_s": summary["seconds"],
            "budget_s": BUDGET_S,
            "ratio_wall_to_budget": round(wall / BUDGET_S, 3),
        }
        if not args.database_url:
            reference = work / "reference.sqlite3"
            _monolith(["migrate", "-v", "0"], f"sqlite:///{reference}", work)
            raw_s, rows = raw_insert_seconds(seeded, reference)
            result.update({
                "reference": "sqlite3.executemany of the same rows, one transaction",
                "reference_s": round(raw_s, 3),
                "reference_rows": rows,
                "ratio_seed_to_reference": round(summary["seconds"] / raw_s, 2),
            })
        result["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                             "platform": platform.platform(),
                             "sqlite": sqlite3.sqlite_version}
    print(json.dumps(result, indent=2))
    return 0
