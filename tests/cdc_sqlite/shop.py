"""The real monolith on SQLite with capture installed, the relay as a subprocess, and a
consumer of its topics — helpers for the integration tests."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdc.converter import unwrap
from cdc.kafka import Consumer, ensure_topics
from tests.support.monolith_server import monolith_env, run_monolith, sqlite_url

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("catalog_category", "catalog_product", "notifications_notification")

PLAN = """\
services:
  catalog:
    data: {owner: monolith, tables: {catalog_category: category, catalog_product: product}}
  notifications:
    data: {tables: {notifications_notification: notification}}
"""


@dataclass
class Shop:
    workdir: Path
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}")
    relay: subprocess.Popen[bytes] | None = None

    @property
    def db(self) -> Path:
        return self.workdir / "monolith.sqlite3"

    @property
    def env(self) -> dict[str, str]:
        return monolith_env(
            sqlite_url(self.db), self.workdir,
            {"STRANGLE_PLAN": str(self.workdir / "plan.yaml")},
        )

    def setup(self, *, install: bool = True) -> Shop:
        (self.workdir / "plan.yaml").write_text(PLAN)
        run_monolith(["migrate", "-v", "0"], self.env, cwd=self.workdir)
        if install:
            self.manage("capture", "install")
        return self

    def manage(self, *args: str) -> dict[str, Any]:
        out = run_monolith(["manage", *args], self.env, cwd=self.workdir).stdout
        return dict(json.loads(out.strip().splitlines()[-1]))

    def django(self, code: str, *, wait: bool = True) -> subprocess.Popen[str]:
        """Run Python in the monolith's Django (``manage shell -c``)."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "monolith", "manage", "shell", "-c", code],
            env=self.env, cwd=self.workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        if wait:
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, f"django code failed:\n{out}\n{err}"
        return proc

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.db, timeout=30, isolation_level=None)
        try:
            return conn.execute(query, args).fetchall()
        finally:
            conn.close()

    def start_relay(self, bootstrap: str, *extra: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / "relay.log").open("ab")
        self.relay = subprocess.Popen(
            [sys.executable, "-m", "cdc.sources.sqlite", "run", "--database", str(self.db),
             "--prefix", self.prefix, "--bootstrap", bootstrap,
             "--offsets", str(self.workdir / "offsets.json"), "--batch-size", "50", *extra],
            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=self.workdir, stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self.relay

    def kill_relay(self, sig: int = signal.SIGKILL) -> None:
        if self.relay is not None and self.relay.poll() is None:
            os.kill(self.relay.pid, sig)
            self.relay.wait(timeout=30)
        self.relay = None

    def relay_log(self) -> str:
        path = self.workdir / "relay.log"
        return path.read_text() if path.exists() else ""

    def offset(self) -> int | None:
        path = self.workdir / "offsets.json"
        if not path.exists():
            return None
        (stored,) = json.loads(path.read_text()).values()
        return int(stored["changelog_id"])

    def position(self) -> int:
        rows = self.sql("SELECT seq FROM sqlite_sequence WHERE name = 'strangler_changelog'")
        return int(rows[0][0]) if rows else 0

    def topics(self) -> list[str]:
        return [f"{self.prefix}.main.{t}" for t in TABLES]


class Events:
    """Every record of the shop's topics, unwrapped: (topic, key, value)."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        ensure_topics(bootstrap, topics)
        self.consumer = Consumer(bootstrap, group_id=f"g{uuid.uuid4().hex[:8]}", topics=topics)
        self.records: list[tuple[str, Any, Any]] = []

    def poll_until(self, done: Any, timeout_s: float = 120.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout_s
        while not done(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; have {len(self.records)}")
            msg = self.consumer.poll(0.5)
            if msg is not None:
                self.records.append((msg.topic, unwrap(msg.key), unwrap(msg.value)))

    def changes(self) -> list[dict[str, Any]]:
        return [v for _, _, v in self.records if isinstance(v, dict) and "op" in v]

    def lsns(self) -> set[int]:
        return {int(v["source"]["lsn"]) for v in self.changes() if v["op"] != "r"}

    def close(self) -> None:
        self.consumer.close()
