from __future__ import annotations

import re

import pytest
import yaml

from strangler_proxy.audit import History
from strangler_proxy.plan import parse_plan
from tests.cli.conftest import PLAN, Env


def stage_of(env: Env, service: str) -> tuple[str, float | None]:
    data = yaml.safe_load(env.plan.read_text())["services"][service]
    return data["stage"], (data.get("canary") or {}).get("percent")


def test_promote_through_every_stage_with_passing_gates(env: Env) -> None:
    expected = [
        ("shadow", None),
        ("canary", 1),
        ("canary", 10),
        ("canary", 50),
        ("service", 50),
        ("retired", 50),
    ]
    for stage, percent in expected:
        current, _ = stage_of(env, "notifications")
        if current == "shadow":
            env.shadow("notifications", matched=150)
        elif current != "monolith":
            env.traffic("notifications", 150)
        result = env.invoke("promote", "notifications")
        assert result.exit_code == 0, result.output
        assert stage_of(env, "notifications") == (stage, percent)
        parse_plan(env.plan.read_text())  # every intermediate plan is valid
    assert "already at the top" in env.invoke("promote", "notifications").output
    steps = [(e["from"]["stage"], e["to"]["stage"], e["to"]["percent"]) for e in env.entries()]
    assert steps == [
        ("monolith", "shadow", None),
        ("shadow", "canary", 1),
        ("canary", "canary", 10),
        ("canary", "canary", 50),
        ("canary", "service", None),
        ("service", "retired", None),
    ]
    assert all(e["actor"] == "alice" and not e["forced"] for e in env.entries())
    shadow_exit = env.entries()[1]
    assert shadow_exit["figures"]["samples"] == 150
    assert {v["gate"]: v["outcome"] for v in shadow_exit["verdicts"]}["mismatch_rate"] == "pass"


def test_promote_changes_only_the_stage_value_byte_for_byte(env: Env) -> None:
    assert env.invoke("promote", "notifications").exit_code == 0
    after = env.plan.read_text()
    assert after == PLAN.replace(
        "    stage: monolith        # monolith -> shadow",
        "    stage: shadow        # monolith -> shadow",
    )
    env.shadow("notifications", matched=150)
    assert env.invoke("promote", "notifications").exit_code == 0
    assert env.plan.read_text() == PLAN.replace(
        "    stage: monolith        # monolith -> shadow",
        "    stage: canary        # monolith -> shadow",
    ).replace(
        'cohort: "header:X-Customer-Id"}',
        'cohort: "header:X-Customer-Id", percent: 1}',
    )


def to_shadow(env: Env) -> None:
    assert env.invoke("promote", "notifications").exit_code == 0


def to_canary(env: Env) -> None:
    to_shadow(env)
    env.shadow("notifications", matched=150)
    assert env.invoke("promote", "notifications").exit_code == 0


def assert_refused(env: Env, gate: str, *reason_parts: str) -> None:
    before_plan = env.plan.read_bytes()
    before_history = env.entries()
    result = env.invoke("promote", "notifications")
    assert result.exit_code == 1, result.output
    assert f"blocked by {gate}" in result.stderr or f", {gate}" in result.stderr
    assert "Nothing was written" in result.stderr
    assert "--force --reason" in result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.strip().startswith(f"x {gate}"))
    for part in reason_parts:
        assert part in line, line
    assert env.plan.read_bytes() == before_plan
    assert env.entries() == before_history


def test_refused_for_too_few_samples_says_how_many_more(env: Env) -> None:
    to_shadow(env)
    env.shadow("notifications", matched=37)
    assert_refused(env, "min_samples", "37 of 100", "63 more needed")


def test_refused_for_mismatches_after_noise(env: Env) -> None:
    to_shadow(env)
    env.shadow("notifications", matched=190, mismatched=10)
    assert_refused(env, "mismatch_rate", "5.00% > max 1.00%")


def test_refused_for_shadow_errors(env: Env) -> None:
    to_shadow(env)
    env.shadow("notifications", matched=190, errors=10)
    assert_refused(env, "error_rate", "5.00% > max 1.00%")


def test_refused_for_canary_server_errors(env: Env) -> None:
    to_canary(env)
    env.traffic("notifications", 190)
    env.traffic("notifications", 10, status=503, monolith=0)
    assert_refused(env, "error_rate", "5.00% > max 1.00%")


def test_refused_for_slow_service(env: Env) -> None:
    to_canary(env)
    env.traffic("notifications", 150, seconds=0.2)
    assert_refused(env, "p99_ratio", "> max 1.50x")


def test_refused_when_the_proxy_cannot_be_read(env: Env) -> None:
    to_canary(env)
    env.proxy_up = False
    assert_refused(env, "min_samples", "unreachable: connection refused")


def test_refused_for_cdc_lag_and_incomplete_snapshot(env: Env) -> None:
    env.plan.write_text(
        PLAN.replace("version: 1\n", "version: 1\ncdc: {source: postgres}\n").replace(
            "      - {path: /api/notifications, methods: [GET, POST]}\n",
            "      - {path: /api/notifications, methods: [GET, POST]}\n"
            "    data: {owner: monolith, tables: {notifications_notification: notification}}\n",
        )
    )
    env.cdc_on = True
    to_shadow(env)
    env.shadow("notifications", matched=150)
    env.cdc.figures = env.cdc.figures.__class__(lag_s=42.0, snapshot_complete=True)
    assert_refused(env, "cdc", "CDC lag 42.0 s > max 5.0 s")
    env.cdc.figures = env.cdc.figures.__class__(lag_s=0.1, snapshot_complete=False)
    assert_refused(env, "cdc", "snapshot not complete")
    env.cdc_on = False
    assert_refused(env, "cdc", "CDC status unavailable")


def test_refused_to_go_beyond_a_required_service(env: Env) -> None:
    result = env.invoke("promote", "orders")
    assert result.exit_code == 1
    assert "notifications is at monolith" in result.stdout
    assert stage_of(env, "orders") == ("monolith", None)
    to_shadow(env)
    assert env.invoke("promote", "orders").exit_code == 0


def test_refused_before_the_minimum_time_in_stage(env: Env) -> None:
    env.plan.write_text(
        PLAN.replace("max_error_rate: 0.01}", "max_error_rate: 0.01, min_duration_s: 3600}")
    )
    to_shadow(env)
    env.shadow("notifications", matched=150)
    assert_refused(env, "min_duration", "of at least 60 min")


def test_force_needs_a_reason_and_records_it(env: Env) -> None:
    to_shadow(env)
    env.shadow("notifications", matched=3)
    result = env.invoke("promote", "notifications", "--force")
    assert result.exit_code == 2
    assert "--force needs --reason" in result.output
    assert env.invoke("promote", "notifications", "--force", "--reason", "  ").exit_code == 2
    assert stage_of(env, "notifications")[0] == "shadow"
    result = env.invoke(
        "promote", "notifications", "--force", "--reason", "launch deadline, risk accepted"
    )
    assert result.exit_code == 0, result.output
    assert stage_of(env, "notifications") == ("canary", 1)
    last = env.entries()[-1]
    assert last["forced"] is True
    assert last["reason"] == "launch deadline, risk accepted"
    assert any(v["outcome"] == "wait" for v in last["verdicts"])


def test_dry_run_prints_diff_and_verdicts_and_writes_nothing(env: Env) -> None:
    result = env.invoke("promote", "notifications", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "-    stage: monolith        # monolith -> shadow" in result.stdout
    assert "+    stage: shadow        # monolith -> shadow" in result.stdout
    assert "requires" in result.stdout and "dry run: nothing written" in result.stdout
    assert env.plan.read_text() == PLAN
    assert env.entries() == []
    to_shadow(env)
    blocked = env.invoke("promote", "notifications", "--dry-run")
    assert blocked.exit_code == 1  # the real run would be refused
    assert "+    stage: canary" in blocked.stdout


def test_json_output(env: Env) -> None:
    out = env.json("promote", "notifications", "--dry-run")
    assert out["dry_run"] is True and out["written"] is False
    assert out["from"] == {"stage": "monolith", "percent": None}
    assert out["to"] == {"stage": "shadow", "percent": None}
    assert "+    stage: shadow" in out["diff"]
    done = env.json("promote", "notifications")
    assert done["written"] is True and re.fullmatch(r"[0-9a-f]{64}", done["plan_hash"])
    refused = env.json("promote", "notifications")
    assert refused["refused"] is True and refused["written"] is False


def test_rollback_is_never_gated_and_steps_back(env: Env) -> None:
    to_canary(env)
    env.proxy_up = False  # no figures at all: a rollback must still go through
    env.traffic("notifications", 10, status=500)
    result = env.invoke("rollback", "notifications", "--reason", "500s in canary")
    assert result.exit_code == 0, result.output
    assert stage_of(env, "notifications")[0] == "shadow"
    last = env.entries()[-1]
    assert (last["action"], last["reason"], last["from"]["stage"]) == (
        "rollback",
        "500s in canary",
        "canary",
    )
    assert env.invoke("rollback", "notifications", "--to", "monolith").exit_code == 0
    assert stage_of(env, "notifications")[0] == "monolith"
    bottom = env.invoke("rollback", "notifications")
    assert bottom.exit_code == 2 and "already at the bottom" in bottom.output


def test_rollback_to_a_named_canary_step(env: Env) -> None:
    env.plan.write_text(PLAN.replace("stage: monolith        #", "stage: service        #"))
    assert env.invoke("rollback", "notifications", "--to", "canary:10").exit_code == 0
    assert stage_of(env, "notifications") == ("canary", 10)


def test_rollback_warns_about_dependants_left_ahead(env: Env) -> None:
    to_shadow(env)
    assert env.invoke("promote", "orders").exit_code == 0
    result = env.invoke("rollback", "notifications")
    assert result.exit_code == 0
    assert "orders requires notifications and is now ahead of it" in result.stderr


def test_concurrent_hand_edit_is_never_lost(env: Env) -> None:
    hand_edited = PLAN.replace("# first to leave", "# first to leave (edited by bob)")

    def bob_saves() -> None:
        env.plan.write_text(hand_edited)

    env.on_scrape = bob_saves  # bob saves while the CLI is collecting figures
    result = env.invoke("promote", "notifications")
    assert result.exit_code == 3, result.output
    assert "changed since it was read" in result.stderr
    assert env.plan.read_text() == hand_edited
    assert env.entries() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("promote", "payments"), "no service 'payments'"),
        (("promote", "notifications", "--to", "prod"), "unknown stage 'prod'"),
        (("rollback", "notifications", "--to", "service"), "cannot roll back"),
    ],
)
def test_bad_input_is_explained(env: Env, args: tuple[str, ...], message: str) -> None:
    result = env.invoke(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert env.plan.read_text() == PLAN


def test_invalid_plan_is_refused_with_file_line_and_path(env: Env) -> None:
    env.plan.write_text(PLAN.replace("stage: monolith        #", "stage: canary-ish        #"))
    result = env.invoke("promote", "notifications")
    assert result.exit_code == 2
    assert re.search(r"migration_plan\.yaml:\d+: services\.notifications\.stage", result.output)


def test_missing_plan_file(env: Env) -> None:
    env.plan.unlink()
    result = env.invoke("promote", "notifications")
    assert result.exit_code == 2 and "cannot read plan" in result.output


def test_history_file_lives_next_to_the_plan(env: Env) -> None:
    to_shadow(env)
    entries, problems = History(env.history).read()
    assert [e.service for e in entries] == ["notifications"] and problems == []


def test_unwritable_history_refuses_and_writes_nothing(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = env.tmp / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("STRANGLE_HISTORY", str(blocker / "history.jsonl"))
    result = env.invoke("promote", "notifications")
    assert result.exit_code == 2
    assert "cannot open the history" in result.stderr and "nothing written" in result.stderr
    assert env.plan.read_text() == PLAN
