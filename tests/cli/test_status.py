from __future__ import annotations

from tests.cli.conftest import Env


def test_status_table_has_one_row_per_service_with_gate_verdicts(env: Env) -> None:
    assert env.invoke("promote", "notifications").exit_code == 0
    env.shadow("notifications", matched=40, mismatched=0)
    env.traffic("notifications", 0, monolith=20)
    result = env.invoke("status")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("SERVICE"))
    for column in (
        "STAGE",
        "CANARY",
        "OWNER",
        "SAMPLES",
        "MISMATCH",
        "ERRORS",
        "P99/MONO",
        "CDC LAG",
        "NEXT",
        "REQ",
        "SAMPLES>=",
        "MISMATCH<=",
        "ERRORS<=",
        "P99<=",
        "CDC",
    ):
        assert column in header
    row = next(line for line in lines if line.startswith("notifications"))
    assert row.split()[:5] == ["notifications", "shadow", "-", "monolith", "40"]
    assert "wait+60" in row and "canary 1%" in row
    orders = next(line for line in lines if line.startswith("orders"))
    assert orders.split()[:2] == ["orders", "monolith"]
    assert "notifications: min_samples wait: not enough evidence yet: 40 of 100" in result.stdout


def test_status_json_carries_figures_and_verdicts(env: Env) -> None:
    assert env.invoke("promote", "notifications").exit_code == 0
    env.shadow("notifications", matched=150)
    out = env.json("status")
    rows = {row["service"]: row for row in out["services"]}
    notifications = rows["notifications"]
    assert notifications["stage"] == "shadow"
    assert notifications["samples"] == 150
    assert notifications["mismatch_rate"] == 0.0
    assert notifications["next"] == "canary 1%"
    assert notifications["ready"] is True
    assert notifications["since"] is not None
    assert rows["orders"]["ready"] is True  # notifications is at shadow now
    assert len(out["plan_hash"]) == 64


def test_status_in_canary_reports_latency_ratio_and_window(env: Env) -> None:
    assert env.invoke("promote", "notifications").exit_code == 0
    env.shadow("notifications", matched=150)
    env.traffic("notifications", 30)  # before canary: not counted for the canary stage
    assert env.invoke("promote", "notifications").exit_code == 0
    env.traffic("notifications", 120, seconds=0.004)
    row = {r["service"]: r for r in env.json("status")["services"]}["notifications"]
    assert row["canary_percent"] == 1
    assert row["samples"] == 120
    assert row["window"] == "since the stage began"
    assert row["p99_ratio"] is not None and 0.5 < row["p99_ratio"] < 2


def test_status_explains_unreachable_sources(env: Env) -> None:
    env.proxy_up = False
    assert env.invoke("promote", "notifications").exit_code == 0
    env.plan.write_text(env.plan.read_text().replace("stage: shadow ", "stage: service "))
    result = env.invoke("status")
    assert result.exit_code == 0
    assert "unreachable: connection refused" in result.stdout


def test_status_at_the_top_of_the_ladder(env: Env) -> None:
    env.plan.write_text(
        env.plan.read_text().replace("stage: monolith        #", "stage: retired #")
    )
    row = {r["service"]: r for r in env.json("status")["services"]}["notifications"]
    assert row["next"] is None and row["verdicts"] == []
