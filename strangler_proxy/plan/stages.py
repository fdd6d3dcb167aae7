"""The ladder a service climbs: monolith → shadow → canary (each step) → service → retired.

Pure functions over :class:`Step` values; ``strangle promote``/``rollback`` use them to
find where a service goes next. A canary percentage that is not one of the plan's
steps (hand-edited to 25 with steps 1, 10, 50) moves to the nearest step in the
direction asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from strangler_proxy.plan.model import ServicePlan, Stage

__all__ = [
    "LADDER",
    "Step",
    "current_step",
    "ladder",
    "next_step",
    "previous_step",
    "step_after",
    "step_before",
]

LADDER: tuple[Stage, ...] = (
    Stage.MONOLITH,
    Stage.SHADOW,
    Stage.CANARY,
    Stage.SERVICE,
    Stage.RETIRED,
)


@dataclass(frozen=True, slots=True, order=False)
class Step:
    """A position on the ladder: ``Step(Stage.CANARY, 10.0)`` is "canary at 10%"."""

    stage: Stage
    percent: float | None = None

    @property
    def order(self) -> tuple[int, float]:
        """Sort key: later on the ladder is larger."""
        return (self.stage.rank, self.percent or 0.0)

    def __str__(self) -> str:
        if self.stage is Stage.CANARY and self.percent is not None:
            return f"canary {self.percent:g}%"
        return self.stage.value


def ladder(steps: Sequence[float]) -> tuple[Step, ...]:
    """Every position in order, e.g. monolith, shadow, canary 1%, 10%, 50%, service, retired."""
    return (
        Step(Stage.MONOLITH),
        Step(Stage.SHADOW),
        *(Step(Stage.CANARY, float(p)) for p in steps),
        Step(Stage.SERVICE),
        Step(Stage.RETIRED),
    )


def current_step(service: ServicePlan) -> Step:
    if service.stage is Stage.CANARY:
        return Step(Stage.CANARY, service.canary.percent or 0.0)
    return Step(service.stage)


def step_after(step: Step, steps: Sequence[float]) -> Step | None:
    """The next position up the ladder, or None from ``retired``."""
    later = [s for s in ladder(steps) if s.order > step.order]
    return later[0] if later else None


def step_before(step: Step, steps: Sequence[float]) -> Step | None:
    """The next position down the ladder, or None from ``monolith``."""
    earlier = [s for s in ladder(steps) if s.order < step.order]
    return earlier[-1] if earlier else None


def next_step(service: ServicePlan) -> Step | None:
    return step_after(current_step(service), service.canary.steps)


def previous_step(service: ServicePlan) -> Step | None:
    return step_before(current_step(service), service.canary.steps)
