"""docs/walkthrough.md, executed: the whole migration of notifications on `strangle up`,
under generated shop traffic, driven by the `strangle` CLI as a user drives it from a
second terminal.

shadow → clean report → promote through the canary steps (real gates, small
min_samples) → promote to service → rollback by plan edit (stage: monolith) and back to
service, orders placed throughout → zero failed client requests → after CDC catches up
(both ways: the service's writes flow back to the monolith), the four mapped tables are
equal row by row in the two databases, including every notification the service created.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from extracted.notifications.config import DEFAULT_ID_BASE as ID_BASE
from tests.support.stack import StackRun, edit_stage

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# monolith table -> (service table, columns compared)
TABLES = {
    "accounts_customer": ("customer", ["id", "email", "name", "phone", "created_at",
                                       "updated_at"]),
    "notifications_notificationtemplate": ("template", ["id", "key", "channel", "subject",
                                                        "body", "created_at", "updated_at"]),
    "notifications_notificationpreference": ("preference", ["id", "customer_id", "channel",
                                                            "enabled", "updated_at"]),
    "notifications_notification": ("notification", ["id", "customer_id", "channel",
                                                    "template", "subject", "body", "status",
                                                    "created_at", "sent_at", "read_at"]),
}
GATES = {"min_samples": 15, "max_mismatch_rate": 0.01, "max_error_rate": 0.01,
         "max_cdc_lag_s": 5, "max_latency_ratio": 3}


def _service_made(db: Path) -> list[int]:
    """Ids of notifications the service created (its own id range)."""
    return [i for i in _rows(db, "notifications_notification" if "monolith" in db.name
                             else "notification", ["id"]) if i >= ID_BASE]


def _own(db: Path) -> list[int]:
    """Ids of notifications the monolith created (below the service's range)."""
    return [i for i in _rows(db, "notifications_notification", ["id"]) if i < ID_BASE]


def _walkthrough_plan(plan: dict[str, Any]) -> None:
    service = plan["services"]["notifications"]
    service["gates"] = GATES  # small min_samples: real gates pass in test time
    service["canary"]["steps"] = [10, 50]


def _canonical(value: Any) -> Any:
    """Django and SQLAlchemy write the same instant as different SQLite text."""
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] in " T":
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        return parsed.isoformat(sep=" ")
    return value


def _rows(db: Path, table: str, columns: list[str]) -> dict[int, tuple[Any, ...]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=20) as conn:
        found = conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {columns[0]}")
        return {int(row[0]): tuple(_canonical(v) for v in row) for row in found}


class Cli:
    def __init__(self, run: StackRun) -> None:
        self.run = run
        self.env = run.cli_env()

    def __call__(self, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-c", "from strangler_proxy.cli import main; main()", *args],
            cwd=self.run.workdir, env=self.env, capture_output=True, text=True, timeout=60)
        assert done.returncode in ok, f"strangle {' '.join(args)} -> {done.returncode}\n" \
                                      f"{done.stdout}\n{done.stderr}"
        return done

    def promote_when_gates_pass(self, service: str, timeout_s: float) -> str:
        """`strangle promote` as a user retries it: exit 1 means a gate said no (mostly
        *wait* for samples; a p99 *fail* on a loaded machine may pass a moment later)."""
        deadline = time.monotonic() + timeout_s
        while True:
            done = self("promote", service, ok=(0, 1))
            if done.returncode == 0:
                return done.stdout
            assert time.monotonic() < deadline, f"gates never passed:\n{done.stdout}{done.stderr}"
            time.sleep(2)


def _proxy_stage(run: StackRun, token: str) -> tuple[str, float | None]:
    doc = httpx.get(f"{run.url}/_strangler/status", timeout=5,
                    headers={"authorization": f"Bearer {token}"}).json()
    svc = doc["plan"]["services"]["notifications"]
    return svc["stage"], svc["canary_percent"]


def _eventually(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def test_walkthrough_migrates_notifications_under_traffic(tmp_path: Path) -> None:
    run = StackRun.start(tmp_path, traffic=True, edit=_walkthrough_plan,
                         extra=("--traffic-workers", "3", "--traffic-rate", "8"))
    strangle = Cli(run)
    token = strangle.env["STRANGLER_ADMIN_TOKEN"]
    try:
        # 1. shadow: the monolith answers, the service gets a copy; wait for evidence
        assert _proxy_stage(run, token) == ("shadow", None)

        def shadow_samples() -> int:
            status = json.loads(strangle("status", "--json").stdout)
            row = next(r for r in status["services"] if r["service"] == "notifications")
            return int(row["samples"] or 0)

        _eventually(lambda: shadow_samples() >= GATES["min_samples"] + 5, 90,
                    "not enough shadow comparisons")

        # 2. the report: a clean comparison
        report = json.loads(strangle("report", "notifications", "--format", "json").stdout)
        assert report["mismatch_rate"] == 0, strangle("report", "notifications").stdout
        assert report["error_rate"] == 0
        text = strangle("report", "notifications").stdout
        assert text.startswith("Shadow report for notifications: PASS"), text

        # 3. promote through the canary steps, each only when its gates pass
        assert "shadow -> canary 10%" in strangle.promote_when_gates_pass("notifications", 60)
        _eventually(lambda: _proxy_stage(run, token) == ("canary", 10.0), 10, "no reload")
        assert "canary 10% -> canary 50%" in strangle.promote_when_gates_pass(
            "notifications", 90)
        _eventually(lambda: _proxy_stage(run, token) == ("canary", 50.0), 10, "no reload")

        # 4. the cutover: all notification traffic to the service, which now also sends
        # the orders' notifications (and its writes flow back to the monolith)
        assert "canary 50% -> service" in strangle.promote_when_gates_pass("notifications", 90)
        _eventually(lambda: _proxy_stage(run, token)[0] == "service", 10, "no reload")
        _eventually(lambda: len(_service_made(run.var / "monolith.sqlite3")) > 2, 60,
                    "notifications the service sent did not come back to the monolith")

        # 5. roll back by editing the plan: the monolith serves and sends again, with ids of
        # its own range, and holds everything the service wrote meanwhile
        edit_stage(run.plan_path, "monolith")
        _eventually(lambda: _proxy_stage(run, token)[0] == "monolith", 10,
                    "the proxy did not pick up the hand edit")
        back_at = _rows(run.var / "monolith.sqlite3", "notifications_notification", ["id"])
        _eventually(lambda: len(_own(run.var / "monolith.sqlite3")) > len(
            [i for i in back_at if i < ID_BASE]) + 2, 60,
            "orders did not send their notifications through the monolith after the rollback")
        # ... and back to the service
        edit_stage(run.plan_path, "service")
        _eventually(lambda: _proxy_stage(run, token)[0] == "service", 10,
                    "the proxy did not pick up the edit back")
        sent = _service_made(run.var / "notifications.sqlite3")
        _eventually(lambda: len(_service_made(run.var / "notifications.sqlite3")) > len(sent) + 2,
                    60, "orders did not send their notifications via the service again")

        entries = json.loads(strangle("history", "notifications", "--json").stdout)["entries"]
        moves = [(e["from"]["stage"], e["to"]["stage"], e["to"]["percent"], e["actor"])
                 for e in entries]
        actor = moves[0][3]
        assert moves == [("shadow", "canary", 10.0, actor), ("canary", "canary", 50.0, actor),
                         ("canary", "service", None, actor),
                         ("service", "monolith", None, "plan-edit"),
                         ("monolith", "service", None, "plan-edit")], moves

        # 6. traffic stops; zero failed client requests throughout
        traffic_pid = run.last_status()["components"]["traffic"]["pid"]
        os.kill(traffic_pid, signal.SIGTERM)
        run.wait_for("COMPONENT DOWN: traffic", 30)
        stats = json.loads((run.var / "traffic.json").read_text())
        assert stats["requests"] > 500
        assert stats["failed"] == 0, stats["failures"]
        assert run.last_status()["proxy"]["errors_5xx"] == 0

        # 7. after CDC catches up (both ways) the two databases hold the same rows, every
        # column, the service's own notifications included
        def compared() -> list[str]:
            problems = []
            for source, (target, columns) in TABLES.items():
                mono = _rows(run.var / "monolith.sqlite3", source, columns)
                svc = _rows(run.var / "notifications.sqlite3", target, columns)
                if mono != svc:
                    diff = sorted(set(mono.items()) ^ set(svc.items()))[:3]
                    problems.append(f"{source}: {len(mono)} vs {len(svc)} rows; e.g. {diff}")
            return problems

        deadline = time.monotonic() + 30
        while (problems := compared()) and time.monotonic() < deadline:
            time.sleep(1)
        assert problems == []
        mono_ids = _rows(run.var / "monolith.sqlite3", "notifications_notification", ["id"])
        made = [i for i in mono_ids if i >= ID_BASE]
        assert len(made) > 5, "the service's notifications are in the monolith's table"
        own_before = max(i for i in back_at if i < ID_BASE)
        assert [i for i in mono_ids if own_before < i < ID_BASE], \
            "the monolith's own notifications of the rollback window, below the service range"
        status = run.last_status()
        for name in ("sink", "sink-back", "capture-back"):
            assert status["components"][name]["up"], name
        assert status["way_back"]["state"] == "streaming", status["way_back"]
        assert status["way_back"]["applied"] and not status["way_back"]["dead_letters"]
    finally:
        code = run.stop()
    assert code == 0, run.stderr()

    # 8. a restart after the cutover: the stack comes up in sync (by CDC position, not row
    # counts), still at `service`
    again = StackRun.start(tmp_path, plan_path=run.plan_path, ports=run.ports)
    try:
        assert "is in sync with the monolith" in again.stderr()
        assert _proxy_stage(again, token)[0] == "service"
    finally:
        assert again.stop() == 0, again.stderr()
