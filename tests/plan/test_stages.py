from __future__ import annotations

import pytest

from strangler_proxy.plan import Stage, parse_plan
from strangler_proxy.plan.stages import (
    LADDER,
    Step,
    current_step,
    ladder,
    next_step,
    previous_step,
    step_after,
    step_before,
)
from tests.plan.samples import VALID

STEPS = (1.0, 10.0, 50.0)


def test_ladder_order() -> None:
    assert [s.value for s in LADDER] == ["monolith", "shadow", "canary", "service", "retired"]
    assert [str(s) for s in ladder(STEPS)] == [
        "monolith",
        "shadow",
        "canary 1%",
        "canary 10%",
        "canary 50%",
        "service",
        "retired",
    ]


def test_walk_up_and_down_the_whole_ladder() -> None:
    up = [Step(Stage.MONOLITH)]
    while (nxt := step_after(up[-1], STEPS)) is not None:
        up.append(nxt)
    assert tuple(up) == ladder(STEPS)
    down = [up[-1]]
    while (prev := step_before(down[-1], STEPS)) is not None:
        down.append(prev)
    assert down == up[::-1]


@pytest.mark.parametrize(
    ("percent", "up", "down"),
    [
        (25.0, "canary 50%", "canary 10%"),
        (0.5, "canary 1%", "shadow"),
        (75.0, "service", "canary 50%"),
        (0.0, "canary 1%", "shadow"),
        (100.0, "service", "canary 50%"),
    ],
)
def test_off_ladder_canary_moves_to_the_nearest_step(percent: float, up: str, down: str) -> None:
    step = Step(Stage.CANARY, percent)
    assert str(step_after(step, STEPS)) == up
    assert str(step_before(step, STEPS)) == down


def test_from_a_service_plan() -> None:
    plan = parse_plan(VALID)
    shadow = plan.services["notifications"]
    assert current_step(shadow) == Step(Stage.SHADOW)
    assert next_step(shadow) == Step(Stage.CANARY, 1.0)
    assert previous_step(shadow) == Step(Stage.MONOLITH)
    canary = parse_plan(VALID.replace("stage: shadow", "stage: canary")).services["notifications"]
    assert current_step(canary) == Step(Stage.CANARY, 10.0)
    assert next_step(canary) == Step(Stage.CANARY, 50.0)
    assert previous_step(canary) == Step(Stage.CANARY, 1.0)
    monolith = plan.services["catalog"]
    assert previous_step(monolith) is None
    retired = parse_plan(VALID.replace("stage: shadow", "stage: retired")).services["notifications"]
    assert next_step(retired) is None and previous_step(retired) == Step(Stage.SERVICE)
