from __future__ import annotations

from dataclasses import replace

import pytest

from strangler_proxy.gates import (
    GATE_NAMES,
    CdcFigures,
    Figures,
    GateConfig,
    Outcome,
    Rung,
    Verdict,
    blocking,
    evaluate,
)

SHADOW = Rung("shadow")
CANARY_1 = Rung("canary", 1)
CANARY_10 = Rung("canary", 10)
SERVICE = Rung("service")
CONFIG = GateConfig(min_samples=200, max_mismatch_rate=0.01, max_error_rate=0.02)

GOOD = Figures(
    samples=500,
    mismatch_rate=0.002,
    error_rate=0.001,
    p99_s=0.012,
    monolith_p99_s=0.010,
)


def by_gate(verdicts: tuple[Verdict, ...]) -> dict[str, Verdict]:
    assert tuple(v.gate for v in verdicts) == GATE_NAMES
    return {v.gate: v for v in verdicts}


def judge(
    figures: Figures = GOOD,
    current: Rung = SHADOW,
    target: Rung = CANARY_1,
    dependencies: dict[str, Rung | None] | None = None,
) -> dict[str, Verdict]:
    return by_gate(
        evaluate(
            current=current,
            target=target,
            config=CONFIG,
            figures=figures,
            dependencies=dependencies or {},
        )
    )


def test_good_evidence_passes_every_applicable_gate() -> None:
    verdicts = judge()
    assert {g: v.outcome for g, v in verdicts.items()} == {
        "requires": Outcome.NOT_APPLICABLE,
        "min_samples": Outcome.PASS,
        "min_duration": Outcome.NOT_APPLICABLE,
        "mismatch_rate": Outcome.PASS,
        "error_rate": Outcome.PASS,
        "p99_ratio": Outcome.PASS,
        "cdc": Outcome.NOT_APPLICABLE,
    }
    assert not blocking(tuple(verdicts.values()))
    assert "1.20x" in verdicts["p99_ratio"].reason


def test_low_traffic_says_how_many_more_samples_are_needed() -> None:
    verdict = judge(Figures(samples=37, mismatch_rate=0.0, error_rate=0.0))["min_samples"]
    assert verdict.outcome is Outcome.WAIT
    assert verdict.blocking
    assert verdict.needed == 163
    assert "not enough evidence yet" in verdict.reason
    assert "163 more needed" in verdict.reason


def test_zero_samples_is_wait_not_pass() -> None:
    verdict = judge(Figures(samples=0))["min_samples"]
    assert verdict.outcome is Outcome.WAIT
    assert verdict.needed == 200


def test_mismatch_rate_above_limit_fails_with_figures_in_reason() -> None:
    verdict = judge(replace(GOOD, mismatch_rate=0.05))["mismatch_rate"]
    assert verdict.outcome is Outcome.FAIL
    assert "5.00%" in verdict.reason and "1.00%" in verdict.reason


def test_error_rate_above_limit_fails() -> None:
    verdict = judge(replace(GOOD, error_rate=0.03))["error_rate"]
    assert verdict.outcome is Outcome.FAIL


def test_limit_itself_passes() -> None:
    verdict = judge(replace(GOOD, error_rate=0.02))["error_rate"]
    assert verdict.outcome is Outcome.PASS


def test_slow_service_fails_latency_gate() -> None:
    verdict = judge(replace(GOOD, p99_s=0.020))["p99_ratio"]
    assert verdict.outcome is Outcome.FAIL
    assert "2.00x" in verdict.reason


def test_missing_sources_are_unknown_with_the_reason() -> None:
    figures = Figures(
        unknown={
            "samples": "shadow store unreachable: no such table",
            "mismatch_rate": "shadow store unreachable: no such table",
            "error_rate": "shadow store unreachable: no such table",
            "p99_s": "proxy admin API unreachable: connection refused",
        }
    )
    verdicts = judge(figures)
    for gate in ("min_samples", "mismatch_rate", "error_rate"):
        assert verdicts[gate].outcome is Outcome.UNKNOWN
        assert verdicts[gate].blocking
    assert "no such table" in verdicts["min_samples"].reason
    canary = judge(figures, current=CANARY_1, target=CANARY_10)
    assert canary["p99_ratio"].outcome is Outcome.UNKNOWN
    assert "connection refused" in canary["p99_ratio"].reason


def test_latency_is_not_judged_in_shadow_where_candidate_calls_are_mirrored() -> None:
    verdict = judge(replace(GOOD, p99_s=None))["p99_ratio"]
    assert verdict.outcome is Outcome.NOT_APPLICABLE
    assert "judged from canary on" in verdict.reason


def test_cdc_lag_snapshot_and_unknown() -> None:
    lagging = replace(GOOD, cdc=CdcFigures(lag_s=12.0, snapshot_complete=True))
    assert judge(lagging)["cdc"].outcome is Outcome.FAIL
    assert "12.0 s" in judge(lagging)["cdc"].reason
    snapshot = replace(GOOD, cdc=CdcFigures(lag_s=0.1, snapshot_complete=False))
    assert judge(snapshot)["cdc"].outcome is Outcome.FAIL
    assert "snapshot" in judge(snapshot)["cdc"].reason
    dark = replace(GOOD, cdc=CdcFigures(None, None, "cdc status: no offsets"))
    assert judge(dark)["cdc"].outcome is Outcome.UNKNOWN
    assert judge(dark)["cdc"].reason == "cdc status: no offsets"
    fine = replace(GOOD, cdc=CdcFigures(lag_s=0.5, snapshot_complete=True))
    assert judge(fine)["cdc"].outcome is Outcome.PASS


def test_requires_blocks_going_beyond_a_dependency() -> None:
    verdict = judge(dependencies={"catalog": SHADOW})["requires"]
    assert verdict.outcome is Outcome.FAIL
    assert "catalog is at shadow" in verdict.reason
    assert judge(dependencies={"catalog": CANARY_1})["requires"].outcome is Outcome.PASS
    behind_percent = judge(current=CANARY_1, target=CANARY_10, dependencies={"catalog": CANARY_1})
    assert behind_percent["requires"].outcome is Outcome.FAIL
    missing = judge(dependencies={"catalog": None})["requires"]
    assert missing.outcome is Outcome.FAIL and "not in the plan" in missing.reason


def test_leaving_monolith_needs_no_evidence_but_respects_requires() -> None:
    verdicts = judge(Figures(), current=Rung("monolith"), target=SHADOW)
    assert verdicts["min_samples"].outcome is Outcome.NOT_APPLICABLE
    assert not blocking(tuple(verdicts.values()))
    gated = judge(
        Figures(), current=Rung("monolith"), target=SHADOW, dependencies={"a": Rung("monolith")}
    )
    assert blocking(tuple(gated.values())) == (gated["requires"],)


def test_canary_without_shadow_figures_skips_mismatch_explicitly() -> None:
    figures = Figures(samples=300, error_rate=0.0, p99_s=0.01, monolith_p99_s=0.01)
    verdicts = judge(figures, current=CANARY_10, target=SERVICE)
    assert verdicts["mismatch_rate"].outcome is Outcome.NOT_APPLICABLE
    assert "requests served" in verdicts["min_samples"].reason
    shadow = judge(figures, current=SHADOW, target=CANARY_1)
    assert shadow["mismatch_rate"].outcome is Outcome.UNKNOWN


def test_service_to_retired_without_monolith_latency_is_not_applicable() -> None:
    figures = Figures(samples=300, error_rate=0.0, p99_s=0.01)
    verdicts = judge(figures, current=SERVICE, target=Rung("retired"))
    assert verdicts["p99_ratio"].outcome is Outcome.NOT_APPLICABLE
    assert not blocking(tuple(verdicts.values()))


def test_rollback_is_never_gated() -> None:
    verdicts = judge(Figures(), current=SERVICE, target=SHADOW, dependencies={"x": None})
    assert all(v.outcome is Outcome.NOT_APPLICABLE for v in verdicts.values())


def test_minimum_time_in_stage() -> None:
    config = GateConfig(min_duration_s=3600)

    def verdict(figures: Figures) -> Verdict:
        verdicts = evaluate(
            current=SHADOW, target=CANARY_1, config=config, figures=figures, dependencies={}
        )
        return by_gate(verdicts)["min_duration"]

    young = verdict(replace(GOOD, stage_age_s=600))
    assert young.outcome is Outcome.WAIT and "50 min to go" in young.reason
    assert verdict(replace(GOOD, stage_age_s=4000)).outcome is Outcome.PASS
    unknown = verdict(replace(GOOD, unknown={"stage_age_s": "no recorded stage change"}))
    assert unknown.outcome is Outcome.UNKNOWN and unknown.reason == "no recorded stage change"


def test_gate_config_from_plan_mapping() -> None:
    config = GateConfig.from_mapping({"min_samples": 50.0, "max_cdc_lag_s": 2, "other": 1})
    assert config.min_samples == 50 and config.max_cdc_lag_s == 2
    assert GateConfig.from_mapping(None) == GateConfig()
    with pytest.raises(ValueError, match=r"gates\.min_samples"):
        GateConfig.from_mapping({"min_samples": -1})
    with pytest.raises(ValueError, match=r"gates\.max_error_rate"):
        GateConfig.from_mapping({"max_error_rate": "high"})


def test_rung_validation_and_order() -> None:
    with pytest.raises(ValueError, match="unknown stage"):
        Rung("prod")
    with pytest.raises(ValueError, match="percent"):
        Rung("canary")
    assert Rung("shadow").rank < CANARY_1.rank < CANARY_10.rank < SERVICE.rank
    assert str(CANARY_10) == "canary 10%"
