from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from strangler_proxy.audit import (
    HISTORY_ENV,
    Entry,
    History,
    current_actor,
    history_path,
    record_reload_changes,
    stage_changes,
)
from strangler_proxy.gates import Rung
from strangler_proxy.plan import Plan, parse_plan


def plan(**stages: str) -> Plan:
    """A parsed plan with one service per keyword: ``plan(orders="canary:10")``."""
    lines = ["version: 1", 'monolith: {url: "http://127.0.0.1:9"}', "services:"]
    for i, (name, rung) in enumerate(stages.items()):
        stage, _, percent = rung.partition(":")
        lines += [
            f"  {name}:",
            f"    url: http://127.0.0.1:{10 + i}",
            f"    routes: [{{path: /api/{name}, methods: [GET]}}]",
            f"    stage: {stage}",
        ]
        if percent:
            lines.append(f"    canary: {{percent: {percent}}}")
    return parse_plan("\n".join(lines) + "\n")


def entry(service: str = "orders", to: Rung | None = None, plan_hash: str = "h1") -> Entry:
    return Entry(
        service=service,
        from_=Rung("shadow"),
        to=to or Rung("canary", 1),
        action="promote",
        actor="alice",
        plan_hash=plan_hash,
        reason="looks good",
        figures={"samples": 250},
        verdicts=({"gate": "min_samples", "outcome": "pass", "reason": "250"},),
    )


def test_history_path_defaults_next_to_plan_then_plan_key_then_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(HISTORY_ENV, raising=False)
    plan = tmp_path / "migration_plan.yaml"
    assert history_path(plan) == tmp_path / "var" / "history.jsonl"
    assert history_path(plan, {"audit": {"history": "audit/h.jsonl"}}) == tmp_path / "audit/h.jsonl"
    monkeypatch.setenv(HISTORY_ENV, str(tmp_path / "elsewhere.jsonl"))
    assert history_path(plan, {"audit": {"history": "x"}}) == tmp_path / "elsewhere.jsonl"


def test_entries_round_trip_as_json_lines(tmp_path: Path) -> None:
    history = History(tmp_path / "var" / "history.jsonl")
    first, second = entry(), entry(service="catalog", to=Rung("service"))
    history.append([first])
    history.append([second])
    lines = history.path.read_text().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["to"] == {"stage": "canary", "percent": 1}
    entries, problems = history.read()
    assert entries == [first, second] and problems == []
    assert history.read("catalog")[0] == [second]
    assert history.stage_since("catalog") == second.ts
    assert history.stage_since("nobody") is None


def test_missing_history_reads_empty(tmp_path: Path) -> None:
    assert History(tmp_path / "none.jsonl").read() == ([], [])


def test_corrupt_lines_are_reported_and_later_appends_stay_readable(tmp_path: Path) -> None:
    history = History(tmp_path / "history.jsonl")
    history.append([entry()])
    with history.path.open("a") as handle:
        handle.write('{"torn": tr')  # a crash mid-line, no newline
    history.append([entry(service="catalog")])
    entries, problems = history.read()
    assert [e.service for e in entries] == ["orders", "catalog"]
    assert len(problems) == 1 and problems[0].line == 2
    assert "unreadable" in str(problems[0])


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    history = History(tmp_path / "history.jsonl")

    def writer(n: int) -> None:
        for i in range(50):
            history.append([entry(service=f"s{n}", plan_hash=str(i))])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries, problems = history.read()
    assert problems == [] and len(entries) == 200


def test_stage_changes_lists_moves_additions_and_removals() -> None:
    old = {"a": Rung("shadow"), "b": Rung("canary", 10), "gone": Rung("monolith")}
    new = {"a": Rung("canary", 1), "b": Rung("canary", 10), "new": Rung("monolith")}
    assert stage_changes(old, new) == [
        ("a", Rung("shadow"), Rung("canary", 1)),
        ("gone", Rung("monolith"), None),
        ("new", None, Rung("monolith")),
    ]


def test_reload_records_hand_edits_as_plan_edit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(HISTORY_ENV, raising=False)
    plan_path = tmp_path / "migration_plan.yaml"
    old = plan(orders="service", catalog="canary:10")
    new = plan(orders="monolith", catalog="canary:10")
    written = record_reload_changes(old, new, plan_path=plan_path, plan_hash="abc")
    assert [(e.service, e.action, e.actor) for e in written] == [
        ("orders", "rollback", "plan-edit")
    ]
    entries, _ = History(tmp_path / "var" / "history.jsonl").read()
    assert entries == written
    assert entries[0].from_ == Rung("service") and entries[0].to == Rung("monolith")
    assert entries[0].plan_hash == "abc"


def test_reload_skips_changes_the_cli_already_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(HISTORY_ENV, raising=False)
    plan_path = tmp_path / "migration_plan.yaml"
    History(tmp_path / "var" / "history.jsonl").append([entry(plan_hash="h2")])
    old = plan(orders="shadow")
    new = plan(orders="canary:1")
    assert record_reload_changes(old, new, plan_path=plan_path, plan_hash="h2") == []
    assert record_reload_changes(new, new, plan_path=plan_path, plan_hash="h2") == []
    # a second proxy instance reloading the same hand edit does not duplicate it
    again = record_reload_changes(new, old, plan_path=plan_path, plan_hash="h3")
    assert len(again) == 1
    assert record_reload_changes(new, old, plan_path=plan_path, plan_hash="h3") == []


def test_current_actor_prefers_explicit_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRANGLE_ACTOR", "ci-bot")
    assert current_actor() == "ci-bot"
    monkeypatch.delenv("STRANGLE_ACTOR")
    monkeypatch.setenv("USER", "alice")
    assert current_actor() == "alice"


RELOAD_PLAN = """\
version: 1
monolith: {url: "http://127.0.0.1:9"}
services:
  orders:
    url: http://127.0.0.1:10
    routes: [{path: /api/orders, methods: [GET]}]
    stage: service
"""


def test_plan_watcher_records_hand_edits_through_reload_recorder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from strangler_proxy.audit import reload_recorder
    from strangler_proxy.plan.watch import PlanWatcher

    monkeypatch.delenv(HISTORY_ENV, raising=False)
    plan = tmp_path / "migration_plan.yaml"
    plan.write_text(RELOAD_PLAN)
    watcher = PlanWatcher(plan, on_reload=reload_recorder())
    plan.write_text(RELOAD_PLAN.replace("stage: service", "stage: monolith"))
    while watcher.poll() == "pending":
        pass
    entries, _ = History(tmp_path / "var" / "history.jsonl").read()
    assert [(e.service, str(e.from_), str(e.to), e.action, e.actor) for e in entries] == [
        ("orders", "service", "monolith", "rollback", "plan-edit")
    ]
    assert entries[0].plan_hash == watcher.current.sha256


def test_reload_recorder_runs_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from strangler_proxy.audit import reload_recorder
    from strangler_proxy.plan.io import load_plan

    monkeypatch.delenv(HISTORY_ENV, raising=False)
    plan = tmp_path / "migration_plan.yaml"
    plan.write_text(RELOAD_PLAN)
    old = load_plan(plan)
    plan.write_text(RELOAD_PLAN.replace("stage: service", "stage: shadow"))
    new = load_plan(plan)
    history = History(tmp_path / "var" / "history.jsonl")
    record = reload_recorder()

    async def main() -> list[Entry]:
        record(old, new)
        for _ in range(200):
            entries, _ = history.read()
            if entries:
                return entries
            await asyncio.sleep(0.01)
        return []

    entries = asyncio.run(main())
    assert [(e.from_, e.to) for e in entries] == [(Rung("service"), Rung("shadow"))]


def test_reload_entries_keep_the_proxy_counters_at_the_swap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from strangler_proxy.audit import reload_recorder
    from strangler_proxy.figures import ServiceCounters, baselines
    from strangler_proxy.metrics import ProxyMetrics
    from strangler_proxy.plan.io import load_plan

    monkeypatch.delenv(HISTORY_ENV, raising=False)
    metrics = ProxyMetrics()
    for _ in range(7):
        metrics.observe("orders", "orders", 200, 0.002)
    plan = tmp_path / "migration_plan.yaml"
    plan.write_text(RELOAD_PLAN)
    old = load_plan(plan)
    plan.write_text(RELOAD_PLAN.replace("stage: service", "stage: monolith"))
    reload_recorder(snapshot=lambda: baselines(metrics.render()))(old, load_plan(plan))
    (entry,), _ = History(tmp_path / "var" / "history.jsonl").read()
    assert entry.figures is not None
    assert ServiceCounters.from_json(entry.figures["proxy_counters"]).served == 7
