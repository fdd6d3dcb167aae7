"""End to end: the real proxy in front of the real Django monolith and a stand-in
service. ``strangle promote`` / ``strangle rollback`` (the installed CLI, gates fed by
the proxy's own metrics) and plain edits of the plan file move live traffic within a
second, no request fails, and every change is in ``strangle history`` exactly once."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.monolith_server import MonolithServer, Seed, start_monolith
from tests.support.proxy_env import TOKEN, wait_until, write_atomic
from tests.support.servers import Server, start_proxy, start_uvicorn

pytestmark = pytest.mark.slow

STRANGLE = str(Path(sys.executable).with_name("strangle"))
ROUTE = "/api/notifications/templates"
SERVICE_NAME = "notifications-svc"

PLAN = """\
# e2e plan: notifications half-way through its canary
version: 1
monolith: {url: "MONOLITH"}
services:
  notifications:
    url: "SERVICE"
    routes:
      - {path: /api/notifications/templates, methods: [GET]}
    stage: canary    # edited by strangle promote/rollback and by hand below
    canary: {steps: [1, 10, 50], percent: 50, cohort: "header:X-Customer-Id"}
    gates: {min_samples: 20, max_error_rate: 0.01, max_latency_ratio: 3}
"""


@dataclass
class Traffic:
    """Client threads hitting the proxy; each result is (start time, status, served by)."""

    port: int
    results: list[tuple[float, int, str]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, worker: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        n = 0
        try:
            while not self.stop.is_set():
                n += 1
                started = time.monotonic()
                conn.request("GET", ROUTE, headers={"X-Customer-Id": f"c{worker}-{n}"})
                response = conn.getresponse()
                response.read()
                by = "service" if response.getheader("x-upstream") == SERVICE_NAME else "monolith"
                self.results.append((started, response.status, by))
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            conn.close()

    def served_after(self, t: float) -> set[str]:
        return {by for started, _, by in self.results if started >= t}

    def switch_time(self, since: float, target: str) -> float:
        """Seconds from ``since`` until every request started went to ``target``."""
        others = [s for s, _, by in self.results if s >= since and by != target]
        return (max(others) - since) if others else 0.0


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Path, Server, MonolithServer]]:
    workdir = tmp_path / "monolith"
    workdir.mkdir()
    monolith = start_monolith(seed=Seed(customers=3, products=3, orders=3), workdir=workdir)
    try:
        service = start_uvicorn("tests.support.upstream_app:app", {"UPSTREAM_NAME": SERVICE_NAME})
        try:
            plan = tmp_path / "migration_plan.yaml"
            plan.write_text(PLAN.replace("MONOLITH", monolith.url).replace("SERVICE", service.url))
            proxy = start_proxy(plan, {"STRANGLER_ADMIN_TOKEN": TOKEN})
            try:
                yield plan, proxy, monolith
            finally:
                proxy.stop()
        finally:
            service.stop()
    finally:
        monolith.stop()


def strangle(
    plan: Path, *args: str, proxy: Server | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("STRANGLE_HISTORY", "STRANGLE_PLAN")}
    env.update(STRANGLE_ACTOR="e2e-operator", STRANGLER_ADMIN_TOKEN=TOKEN)
    return subprocess.run(
        [STRANGLE, *args, "--plan", str(plan), *(["--proxy", proxy.url] if proxy else [])],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_promote_and_rollback_move_live_traffic_with_zero_failures(
    stack: tuple[Path, Server, MonolithServer],
) -> None:
    plan, proxy, _ = stack
    traffic = Traffic(proxy.port)
    threads = [threading.Thread(target=traffic.run, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    switches: dict[str, float] = {}
    try:
        assert wait_until(lambda: traffic.served_after(0) == {"monolith", "service"}, timeout=20)
        assert wait_until(lambda: len(traffic.results) > 100, timeout=20)

        def move(label: str, target: str, change: Callable[[], None]) -> None:
            change()
            # measured from the moment the plan file was replaced, not from the CLI's exit
            written = plan.stat().st_mtime - (time.time() - time.monotonic())
            moved = wait_until(
                lambda: (
                    traffic.served_after(time.monotonic() - 0.3) == {target}
                    and sum(1 for r in traffic.results if r[0] > written + 0.3) > 20
                ),
                timeout=10,
            )
            assert moved, f"{label}: traffic never moved to {target}"
            switches[label] = traffic.switch_time(written, target)

        def cli(*args: str) -> None:
            result = strangle(plan, *args, proxy=proxy)
            assert result.returncode == 0, result.stdout + result.stderr

        move("promote", "service", lambda: cli("promote", "notifications"))
        move(
            "rollback",
            "monolith",
            lambda: cli("rollback", "notifications", "--to", "monolith", "--reason", "e2e"),
        )
        text = plan.read_text()
        move(
            "hand promote",
            "service",
            lambda: write_atomic(plan, text.replace("stage: monolith ", "stage: service ")),
        )
        move("hand rollback", "monolith", lambda: write_atomic(plan, text))
    finally:
        traffic.stop.set()
        for thread in threads:
            thread.join(15)
    assert not traffic.errors, traffic.errors
    statuses = {status for _, status, _ in traffic.results}
    assert statuses == {200}, f"failed requests: {statuses}"
    for label, seconds in switches.items():
        assert seconds < 1.0, f"{label}: routing changed after {seconds:.2f}s ({switches})"

    history = strangle(plan, "history", "notifications", "--json")
    assert history.returncode == 0, history.stderr
    entries = json.loads(history.stdout)["entries"]
    moves = [(e["action"], e["actor"], e["from"]["stage"], e["to"]["stage"]) for e in entries]
    assert moves == [
        ("promote", "e2e-operator", "canary", "service"),
        ("rollback", "e2e-operator", "service", "monolith"),
        ("promote", "plan-edit", "monolith", "service"),
        ("rollback", "plan-edit", "service", "monolith"),
    ]
    promoted = entries[0]
    gates = {v["gate"]: v["outcome"] for v in promoted["verdicts"]}
    assert gates["min_samples"] == "pass" and gates["error_rate"] == "pass"
    assert gates["p99_ratio"] == "pass"
    assert promoted["figures"]["samples"] >= 20
    assert entries[1]["reason"] == "e2e"
    table = strangle(plan, "history")
    assert "plan-edit" in table.stdout and "e2e-operator" in table.stdout

    status = strangle(plan, "status", "--json", proxy=proxy)
    assert status.returncode == 0, status.stderr
    row = json.loads(status.stdout)["services"][0]
    assert (row["service"], row["stage"], row["next"]) == ("notifications", "monolith", "shadow")
    assert row["window"] == "since the stage began"
    print("routing switched after", {k: round(v, 3) for k, v in switches.items()})


SHADOW_PLAN = """\
version: 1
monolith: {url: "MONOLITH"}
shadow_store: {url: "sqlite:///var/shadow.db"}
services:
  catalog:            # a faithful candidate
    url: "FAITHFUL"
    routes: [{path: "/api/catalog/products/{id}", methods: [GET]}]
    stage: shadow
    shadow: {sample: 1.0, noise_sample: 1.0}
    gates: {min_samples: 20, max_mismatch_rate: 0.01, max_error_rate: 0.01}
  accounts:           # a candidate that gets one field wrong
    url: "TAMPERING"
    routes: [{path: "/api/customers/{id}", methods: [GET]}]
    stage: shadow
    shadow: {sample: 1.0, noise_sample: 1.0}
    gates: {min_samples: 20, max_mismatch_rate: 0.01, max_error_rate: 0.01}
"""


def test_gates_judge_real_shadow_comparisons(tmp_path: Path) -> None:
    """Shadow figures come from the real comparison engine fed by the proxy's mirror:
    too little evidence waits, a faithful candidate is promoted, a wrong one refused."""
    from strangler_proxy.shadow.store import ShadowStore

    workdir = tmp_path / "monolith"
    workdir.mkdir()
    with start_monolith(seed=Seed(customers=3, products=3, orders=3), workdir=workdir) as mono:
        faithful = start_uvicorn(
            "tests.support.tampering_candidate:app", {"UPSTREAM_URL": mono.url}
        )
        tampering = start_uvicorn(
            "tests.support.tampering_candidate:app",
            {"UPSTREAM_URL": mono.url, "TAMPER_FIELD": "email", "TAMPER_VALUE": '"x@y.z"'},
        )
        plan = tmp_path / "migration_plan.yaml"
        plan.write_text(
            SHADOW_PLAN.replace("MONOLITH", mono.url)
            .replace("FAITHFUL", faithful.url)
            .replace("TAMPERING", tampering.url)
        )
        proxy = start_proxy(
            plan,
            {
                "STRANGLER_ADMIN_TOKEN": TOKEN,
                "STRANGLER_SINK": "strangler_proxy.shadow.sink:engine_from_plan",
                "STRANGLER_ACCESS_LOG": "0",
            },
        )
        try:
            early = strangle(plan, "promote", "catalog", proxy=proxy)
            assert early.returncode == 1
            assert "0 of 20 shadow comparisons in shadow; 20 more needed" in early.stdout

            conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
            for i in range(30):
                for path in (f"/api/catalog/products/{1 + i % 3}", f"/api/customers/{1 + i % 3}"):
                    conn.request("GET", path)
                    response = conn.getresponse()
                    response.read()
                    assert response.status == 200
            conn.close()
            store = ShadowStore(f"sqlite:///{tmp_path / 'var' / 'shadow.db'}")

            def compared(service: str) -> int:
                return sum(t.count for t in store.tallies(service) if t.key.source == "candidate")

            assert wait_until(lambda: compared("catalog") >= 30 and compared("accounts") >= 30)
            store.close()

            refused = strangle(plan, "promote", "accounts", proxy=proxy)
            assert refused.returncode == 1, refused.stdout + refused.stderr
            assert "blocked by mismatch_rate" in refused.stderr
            assert "noise-adjusted mismatch rate 100.00% > max 1.00%" in refused.stdout

            promoted = strangle(plan, "promote", "catalog", proxy=proxy)
            assert promoted.returncode == 0, promoted.stdout + promoted.stderr
            assert "30 shadow comparisons in shadow (min 20)" in promoted.stdout
        finally:
            proxy.stop()
            faithful.stop()
            tampering.stop()
    status = json.loads(strangle(plan, "status", "--json").stdout)
    rows = {row["service"]: row for row in status["services"]}
    assert (rows["catalog"]["stage"], rows["catalog"]["canary_percent"]) == ("canary", 1)
    assert rows["accounts"]["stage"] == "shadow" and rows["accounts"]["mismatch_rate"] == 1.0
    history = json.loads(strangle(plan, "history", "--json").stdout)["entries"]
    assert [(e["service"], e["to"]["stage"]) for e in history] == [("catalog", "canary")]
