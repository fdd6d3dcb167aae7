from __future__ import annotations

from strangler_proxy.audit import record_reload_changes
from strangler_proxy.plan import parse_plan
from strangler_proxy.plan.edit import content_hash
from tests.cli.conftest import PLAN, Env


def test_history_lists_cli_changes_and_plan_edits(env: Env) -> None:
    assert env.invoke("promote", "notifications").exit_code == 0
    assert env.invoke("rollback", "notifications", "--reason", "noisy").exit_code == 0
    before = parse_plan(env.plan.read_text())
    hand = env.plan.read_text().replace("stage: monolith        #", "stage: shadow        #")
    env.plan.write_text(hand)
    record_reload_changes(
        before,
        parse_plan(hand),
        plan_path=env.plan,
        plan_hash=content_hash(hand.encode()),
    )
    result = env.invoke("history")
    assert result.exit_code == 0
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert [(r[1], r[2], r[3], r[4], r[5]) for r in rows] == [
        ("notifications", "monolith", "shadow", "promote", "alice"),
        ("notifications", "shadow", "monolith", "rollback", "alice"),
        ("notifications", "monolith", "shadow", "promote", "plan-edit"),
    ]
    assert "noisy" in result.stdout


def test_history_filters_by_service_and_prints_json(env: Env) -> None:
    assert env.invoke("promote", "notifications").exit_code == 0
    assert env.invoke("promote", "orders").exit_code == 0
    out = env.json("history", "orders")
    assert [e["service"] for e in out["entries"]] == ["orders"]
    entry = out["entries"][0]
    assert entry["to"] == {"stage": "shadow", "percent": None}
    assert entry["actor"] == "alice" and len(entry["plan_hash"]) == 64
    assert entry["verdicts"][0]["gate"] == "requires"


def test_history_marks_forced_changes(env: Env) -> None:
    assert env.invoke("promote", "notifications").exit_code == 0
    result = env.invoke("promote", "notifications", "--force", "--reason", "demo day")
    assert result.exit_code == 0
    assert "FORCED: demo day" in env.invoke("history").stdout


def test_empty_and_damaged_history(env: Env) -> None:
    assert "no stage changes recorded" in env.invoke("history").stdout
    assert env.invoke("promote", "notifications").exit_code == 0
    with env.history.open("a") as handle:
        handle.write("{not json\n")
    result = env.invoke("history")
    assert result.exit_code == 0
    assert "line 2: unreadable entry skipped" in result.stderr
    assert "notifications" in result.stdout


def test_history_is_readable_when_the_plan_is_broken(env: Env) -> None:
    assert env.invoke("promote", "notifications").exit_code == 0
    env.plan.write_text(PLAN + "  : [broken\n")
    result = env.invoke("history")
    assert result.exit_code == 0 and "notifications" in result.stdout
