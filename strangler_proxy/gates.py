"""Promotion gates: verdicts as pure functions of collected figures.

Nothing here does I/O. :mod:`strangler_proxy.figures` collects the numbers; this module
decides. Every gate answers with one :class:`Verdict`:

* ``pass`` / ``fail`` — the figure is known and inside / outside its limit;
* ``wait`` — not enough evidence yet; the verdict says how many more samples are needed;
* ``unknown`` — a source could not be read; the reason says which and why;
* ``n/a`` — the gate does not apply to this step (the reason says why).

``fail``, ``wait`` and ``unknown`` block a promotion (``--force`` overrides, recorded).
Which evidence applies depends on the stage the service is *leaving*: shadow is judged
on paired comparisons, canary and service on the traffic the service actually served.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

STAGES: tuple[str, ...] = ("monolith", "shadow", "canary", "service", "retired")
GATE_NAMES: tuple[str, ...] = (
    "requires",
    "min_samples",
    "min_duration",
    "mismatch_rate",
    "error_rate",
    "p99_ratio",
    "cdc",
)


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WAIT = "wait"
    UNKNOWN = "unknown"
    NOT_APPLICABLE = "n/a"


BLOCKING = frozenset({Outcome.FAIL, Outcome.WAIT, Outcome.UNKNOWN})


@dataclass(frozen=True, slots=True)
class Rung:
    """One step of a service's ladder: ``Rung("canary", 10)``; percent only for canary."""

    stage: str
    percent: float | None = None

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r} (one of {', '.join(STAGES)})")
        if (self.stage == "canary") != (self.percent is not None):
            raise ValueError("a canary rung needs a percent; other stages take none")

    @property
    def rank(self) -> tuple[int, float]:
        return (STAGES.index(self.stage), self.percent or 0.0)

    def __str__(self) -> str:
        return f"canary {self.percent:g}%" if self.stage == "canary" else self.stage

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "percent": self.percent}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Rung:
        return cls(str(raw["stage"]), raw.get("percent"))


@dataclass(frozen=True, slots=True)
class GateConfig:
    """Limits for one service: ``GateConfig(min_samples=200, max_mismatch_rate=0.01)``."""

    min_samples: int = 200
    max_mismatch_rate: float = 0.01
    max_error_rate: float = 0.01
    max_latency_ratio: float = 1.5  # service p99 / monolith p99
    max_cdc_lag_s: float = 5.0
    min_duration_s: float = 0.0  # minimum time in the current stage

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> GateConfig:
        """Build from the plan's ``gates:`` mapping; ValueError names the bad key."""
        values: dict[str, Any] = {}
        for key, value in (raw or {}).items():
            if key not in cls.__dataclass_fields__:
                continue  # other helpers may extend `gates:`; unknown keys are theirs
            if key == "min_samples":
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or value != int(value)
                    or value < 0
                ):
                    raise ValueError(f"gates.{key}: must be a non-negative integer")
                value = int(value)
            elif (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"gates.{key}: must be a non-negative number")
            values[key] = value
        return cls(**values)


@dataclass(frozen=True, slots=True)
class CdcFigures:
    """CDC state for the service's tables; ``None`` figures come with a reason."""

    lag_s: float | None
    snapshot_complete: bool | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Figures:
    """What was measured for one service over its current stage.

    ``samples`` counts shadow comparisons in stage shadow and requests the service
    served in canary/service. A figure that could not be collected is ``None`` and
    ``unknown`` maps its name to the reason. ``cdc`` is ``None`` when CDC is not
    configured for the service.
    """

    samples: int | None = None
    mismatch_rate: float | None = None
    error_rate: float | None = None
    p99_s: float | None = None
    monolith_p99_s: float | None = None
    cdc: CdcFigures | None = None
    stage_age_s: float | None = None
    unknown: Mapping[str, str] = field(default_factory=dict)

    @property
    def p99_ratio(self) -> float | None:
        if self.p99_s is None or self.monolith_p99_s is None or self.monolith_p99_s <= 0:
            return None
        return self.p99_s / self.monolith_p99_s

    def why_unknown(self, *names: str) -> str:
        for name in names:
            if name in self.unknown:
                return self.unknown[name]
        return f"{names[0]} was not measured"

    def to_json(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "mismatch_rate": self.mismatch_rate,
            "error_rate": self.error_rate,
            "p99_s": self.p99_s,
            "monolith_p99_s": self.monolith_p99_s,
            "p99_ratio": self.p99_ratio,
            "cdc": None
            if self.cdc is None
            else {
                "lag_s": self.cdc.lag_s,
                "snapshot_complete": self.cdc.snapshot_complete,
                "reason": self.cdc.reason or None,
            },
            "stage_age_s": self.stage_age_s,
            "unknown": dict(self.unknown),
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    gate: str
    outcome: Outcome
    reason: str
    needed: int | None = None  # more samples needed, for `wait`

    @property
    def blocking(self) -> bool:
        return self.outcome in BLOCKING

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "gate": self.gate,
            "outcome": str(self.outcome),
            "reason": self.reason,
        }
        if self.needed is not None:
            out["needed"] = self.needed
        return out


def blocking(verdicts: tuple[Verdict, ...]) -> tuple[Verdict, ...]:
    return tuple(v for v in verdicts if v.blocking)


def evaluate(
    *,
    current: Rung,
    target: Rung,
    config: GateConfig,
    figures: Figures,
    dependencies: Mapping[str, Rung | None],
) -> tuple[Verdict, ...]:
    """All gates for moving a service from ``current`` to ``target`` (in GATE_NAMES order).

    ``dependencies`` maps each service named in ``requires`` to its current rung, or
    ``None`` when the plan has no such service. Moving down (or nowhere) is never gated.
    """
    if target.rank <= current.rank:
        return tuple(
            Verdict(name, Outcome.NOT_APPLICABLE, "rollback is never gated") for name in GATE_NAMES
        )
    verdicts = [_requires(target, dependencies)]
    if current.stage == "monolith":
        why = "the service served no traffic in stage monolith; nothing to judge"
        verdicts += [Verdict(n, Outcome.NOT_APPLICABLE, why) for n in GATE_NAMES[1:6]]
    else:
        verdicts += [
            _min_samples(current, config, figures),
            _min_duration(current, config, figures),
            _mismatch(current, config, figures),
            _error_rate(config, figures),
            _p99_ratio(current, config, figures),
        ]
    verdicts.append(_cdc(config, figures))
    return tuple(verdicts)


def _requires(target: Rung, dependencies: Mapping[str, Rung | None]) -> Verdict:
    if not dependencies:
        return Verdict("requires", Outcome.NOT_APPLICABLE, "no dependencies")
    behind = []
    for name, rung in sorted(dependencies.items()):
        if rung is None:
            why = f"required service {name!r} is not in the plan"
            return Verdict("requires", Outcome.FAIL, why)
        if rung.rank < target.rank:
            behind.append(f"{name} is at {rung}")
    if behind:
        return Verdict(
            "requires",
            Outcome.FAIL,
            f"may not go beyond a service it depends on: {'; '.join(behind)} (target {target})",
        )
    names = ", ".join(sorted(dependencies))
    return Verdict("requires", Outcome.PASS, f"{names} at or beyond {target}")


def _min_samples(current: Rung, config: GateConfig, figures: Figures) -> Verdict:
    what = "shadow comparisons" if current.stage == "shadow" else "requests served"
    if figures.samples is None:
        return Verdict("min_samples", Outcome.UNKNOWN, figures.why_unknown("samples"))
    if figures.samples < config.min_samples:
        needed = config.min_samples - figures.samples
        return Verdict(
            "min_samples",
            Outcome.WAIT,
            f"not enough evidence yet: {figures.samples} of {config.min_samples} {what} "
            f"in {current}; {needed} more needed",
            needed=needed,
        )
    return Verdict(
        "min_samples",
        Outcome.PASS,
        f"{figures.samples} {what} in {current} (min {config.min_samples})",
    )


def _min_duration(current: Rung, config: GateConfig, figures: Figures) -> Verdict:
    limit = config.min_duration_s
    if limit <= 0:
        return Verdict("min_duration", Outcome.NOT_APPLICABLE, "no minimum time in stage")
    age = figures.stage_age_s
    if age is None:
        return Verdict("min_duration", Outcome.UNKNOWN, figures.why_unknown("stage_age_s"))
    if age < limit:
        return Verdict(
            "min_duration",
            Outcome.WAIT,
            f"in {current} for {_duration(age)} of at least {_duration(limit)}; "
            f"{_duration(limit - age)} to go",
        )
    return Verdict(
        "min_duration", Outcome.PASS, f"in {current} for {_duration(age)} (min {_duration(limit)})"
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _rate_verdict(gate: str, label: str, value: float | None, limit: float, why: str) -> Verdict:
    if value is None:
        return Verdict(gate, Outcome.UNKNOWN, why)
    outcome = Outcome.PASS if value <= limit else Outcome.FAIL
    relation = "<=" if outcome is Outcome.PASS else ">"
    return Verdict(gate, outcome, f"{label} {value:.2%} {relation} max {limit:.2%}")


def _mismatch(current: Rung, config: GateConfig, figures: Figures) -> Verdict:
    if current.stage != "shadow" and figures.mismatch_rate is None:
        return Verdict(
            "mismatch_rate",
            Outcome.NOT_APPLICABLE,
            f"no paired comparisons in {current.stage}; judged when leaving shadow",
        )
    return _rate_verdict(
        "mismatch_rate",
        "noise-adjusted mismatch rate",
        figures.mismatch_rate,
        config.max_mismatch_rate,
        figures.why_unknown("mismatch_rate"),
    )


def _error_rate(config: GateConfig, figures: Figures) -> Verdict:
    return _rate_verdict(
        "error_rate",
        "error rate",
        figures.error_rate,
        config.max_error_rate,
        figures.why_unknown("error_rate"),
    )


def _p99_ratio(current: Rung, config: GateConfig, figures: Figures) -> Verdict:
    ratio = figures.p99_ratio
    if ratio is None:
        if current.stage == "shadow" and figures.p99_s is None:
            return Verdict(
                "p99_ratio",
                Outcome.NOT_APPLICABLE,
                "mirrored calls are off the client path; latency is judged from canary on",
            )
        if current.stage == "service" and figures.monolith_p99_s is None:
            return Verdict(
                "p99_ratio",
                Outcome.NOT_APPLICABLE,
                "the monolith serves none of these routes in stage service",
            )
        return Verdict("p99_ratio", Outcome.UNKNOWN, figures.why_unknown("p99_s", "monolith_p99_s"))
    assert figures.p99_s is not None and figures.monolith_p99_s is not None
    outcome = Outcome.PASS if ratio <= config.max_latency_ratio else Outcome.FAIL
    relation = "<=" if outcome is Outcome.PASS else ">"
    return Verdict(
        "p99_ratio",
        outcome,
        f"p99 {figures.p99_s * 1000:.1f} ms vs monolith {figures.monolith_p99_s * 1000:.1f} ms"
        f" = {ratio:.2f}x {relation} max {config.max_latency_ratio:.2f}x",
    )


def _cdc(config: GateConfig, figures: Figures) -> Verdict:
    cdc = figures.cdc
    if cdc is None:
        return Verdict("cdc", Outcome.NOT_APPLICABLE, "CDC is not configured for this service")
    if cdc.snapshot_complete is None or cdc.lag_s is None:
        return Verdict("cdc", Outcome.UNKNOWN, cdc.reason or "CDC status could not be read")
    if not cdc.snapshot_complete:
        return Verdict("cdc", Outcome.FAIL, "initial snapshot not complete yet")
    if cdc.lag_s > config.max_cdc_lag_s:
        return Verdict(
            "cdc", Outcome.FAIL, f"CDC lag {cdc.lag_s:.1f} s > max {config.max_cdc_lag_s:.1f} s"
        )
    return Verdict(
        "cdc",
        Outcome.PASS,
        f"snapshot complete, lag {cdc.lag_s:.1f} s <= max {config.max_cdc_lag_s:.1f} s",
    )
