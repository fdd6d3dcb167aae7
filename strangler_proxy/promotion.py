"""Where a promotion or rollback goes, and what it changes in the plan (pure).

The ladder is ``monolith → shadow → canary (one rung per step) → service → retired``.
Promote moves one rung up, rollback one rung down, ``--to`` names a rung:
``shadow``, ``canary`` (the nearest canary step in that direction), ``canary:10``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from strangler_proxy.gates import STAGES, Rung
from strangler_proxy.plan import stages
from strangler_proxy.plan.model import Plan, Stage

__all__ = ["LadderError", "Move", "ladder", "plan_edits", "resolve_move", "rung_of", "rungs_of"]

DEFAULT_STEPS: tuple[float, ...] = (1.0, 10.0, 50.0)


class LadderError(ValueError):
    """The requested move is not possible (unknown rung, wrong direction, at the end)."""


@dataclass(frozen=True, slots=True)
class Move:
    service: str
    current: Rung
    target: Rung

    @property
    def is_rollback(self) -> bool:
        return self.target.rank < self.current.rank


def rung_of(step: stages.Step) -> Rung:
    """The plan's ladder position as the JSON-friendly value gates and history use."""
    return Rung(step.stage.value, step.percent if step.stage is Stage.CANARY else None)


def rungs_of(plan: Plan) -> dict[str, Rung]:
    """Where each service of a parsed plan stands."""
    return {name: rung_of(stages.current_step(s)) for name, s in plan.services.items()}


def ladder(steps: Sequence[float] = DEFAULT_STEPS) -> tuple[Rung, ...]:
    return tuple(rung_of(step) for step in stages.ladder(steps))


def _parse(text: str) -> tuple[str, float | None]:
    stage, _, percent = text.strip().lower().partition(":")
    stage = stage.strip()
    if stage not in STAGES:
        raise LadderError(f"unknown stage {text!r}; use one of {', '.join(STAGES)} or canary:N")
    if not percent:
        return stage, None
    if stage != "canary":
        raise LadderError(f"only canary takes a percent, got {text!r}")
    try:
        value = float(percent.strip().rstrip("%"))
    except ValueError:
        raise LadderError(f"canary percent must be a number, got {text!r}") from None
    if not 0 < value <= 100:
        raise LadderError(f"canary percent must be in (0, 100], got {value:g}")
    return stage, value


def resolve_move(
    service: str,
    current: Rung,
    steps: Sequence[float],
    *,
    up: bool,
    to: str | None = None,
) -> Move:
    """The move ``promote`` (``up=True``) or ``rollback`` would make."""
    rungs = ladder(steps)
    verb = "promote" if up else "roll back"
    if to is None:
        candidates = [r for r in rungs if (r.rank > current.rank if up else r.rank < current.rank)]
        if not candidates:
            end = "top" if up else "bottom"
            raise LadderError(f"cannot {verb} {service}: already at the {end} ({current})")
        return Move(service, current, candidates[0] if up else candidates[-1])
    stage, percent = _parse(to)
    if stage == "canary" and percent is None:
        steps_in_direction = [
            r
            for r in rungs
            if r.stage == "canary" and (r.rank > current.rank if up else r.rank < current.rank)
        ]
        if not steps_in_direction:
            raise LadderError(f"cannot {verb} {service} to canary from {current}")
        target = steps_in_direction[0] if up else steps_in_direction[-1]
    else:
        target = Rung(stage, percent)
    if up and target.rank <= current.rank:
        raise LadderError(
            f"cannot promote {service} to {target}: it is at {current}; use rollback to go back"
        )
    if not up and target.rank >= current.rank:
        raise LadderError(f"cannot roll back {service} to {target}: it is at {current}")
    return Move(service, current, target)


def plan_edits(move: Move) -> dict[tuple[str, ...], str | float]:
    """Key paths to set in the plan for ``move``: the stage, and the percent on canary."""
    base = ("services", move.service)
    edits: dict[tuple[str, ...], str | float] = {(*base, "stage"): move.target.stage}
    if move.target.percent is not None:
        edits[(*base, "canary", "percent")] = move.target.percent
    return edits
