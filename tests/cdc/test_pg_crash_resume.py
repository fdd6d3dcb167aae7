"""kill -9 the capture process mid-stream, repeatedly: after a restart nothing is lost,
and every duplicate carries the same source position as its original."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg2

from cdc.config import pg_dsn
from tests.cdc.pg_support import TopicReader, execute, write_plan

RUN = [sys.executable, "-c", "from strangler_proxy.cli import main; main()", "cdc", "run"]


def start(plan: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",
                                                            "KAFKA_BOOTSTRAP_SERVERS")}
    return subprocess.Popen([*RUN, "--plan", str(plan)], stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, env=env)


def wait_streaming(status: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        if status.exists() and '"streaming"' in status.read_text():
            return
        time.sleep(0.05)
    raise AssertionError("capture did not start streaming: " + log.read_text()[-2000:])


class Writer(threading.Thread):
    """One transaction per step: insert a row, and update the previous one."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.done: set[tuple[int, int]] = set()

    def run(self) -> None:
        conn = psycopg2.connect(pg_dsn(self.url))
        i = 0
        with conn.cursor() as cur:
            while not self.stop.is_set():
                i += 1
                cur.execute("INSERT INTO ledger (id, version) VALUES (%s, 0)", (i,))
                if i > 1:
                    cur.execute("UPDATE ledger SET version = 1 WHERE id = %s", (i - 1,))
                conn.commit()
                self.done.add((i, 0))
                if i > 1:
                    self.done.add((i - 1, 1))
                time.sleep(0.002)
        conn.close()


def test_kill_9_repeatedly_loses_nothing(pg_database: str, kafka_bootstrap: str,
                                         tmp_path: Path) -> None:
    execute(pg_database, "CREATE TABLE ledger (id int PRIMARY KEY, version int NOT NULL)")
    prefix = f"crash{uuid.uuid4().hex[:6]}"
    plan = write_plan(tmp_path / "plan.yaml", pg_database, kafka_bootstrap, prefix)
    log = tmp_path / "cdc.log"
    writer = Writer(pg_database)
    rng = random.Random(11)
    kills = 0
    try:
        for _ in range(5):
            proc = start(plan, log)
            if not writer.is_alive():
                # changes before the first snapshot completes exist only as final state
                wait_streaming(tmp_path / "state" / "status.json", proc, log)
                writer.start()
            time.sleep(rng.uniform(1.0, 2.5))
            assert proc.poll() is None, log.read_text()[-2000:]
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
    finally:
        writer.stop.set()
        writer.join()
    assert kills == 5 and len(writer.done) > 200
    final = start(plan, log)
    reader = TopicReader(kafka_bootstrap, f"{prefix}.public.ledger")
    try:
        def seen(records: list[Any]) -> set[tuple[int, int]]:
            return {(v["after"]["id"], v["after"]["version"]) for _, v, _ in records
                    if v and v["op"] in ("c", "u", "r")}

        records = reader.read_until(lambda r: writer.done <= seen(r), timeout_s=120)
        final.send_signal(signal.SIGTERM)
        assert final.wait(30) == 0, log.read_text()[-2000:]
    finally:
        if final.poll() is None:
            final.kill()
            final.wait()
        reader.close()
    missing = writer.done - seen(records)
    assert not missing, f"lost {len(missing)} changes, e.g. {sorted(missing)[:5]}"
    by_position: dict[tuple[str, str], set[str]] = {}
    for key, value, _ in records:
        if value and value["op"] != "r":
            pos = (value["source"]["sequence"], str(key))
            by_position.setdefault(pos, set()).add(repr((value["op"], value["after"])))
    assert all(len(v) == 1 for v in by_position.values())
    streamed = [v for _, v, _ in records if v and v["op"] != "r"]
    assert len(streamed) >= len(writer.done) - sum(1 for _, v, _ in records
                                                   if v and v["op"] == "r")
