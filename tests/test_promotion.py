from __future__ import annotations

import pytest

from strangler_proxy.gates import Rung
from strangler_proxy.promotion import LadderError, Move, ladder, plan_edits, resolve_move

STEPS = (1.0, 10.0, 50.0)


def test_ladder_has_one_rung_per_canary_step() -> None:
    assert [str(r) for r in ladder(STEPS)] == [
        "monolith",
        "shadow",
        "canary 1%",
        "canary 10%",
        "canary 50%",
        "service",
        "retired",
    ]


def test_promote_walks_every_rung_and_stops_at_the_top() -> None:
    rung = Rung("monolith")
    walked = [rung]
    while rung != Rung("retired"):
        rung = resolve_move("orders", rung, STEPS, up=True).target
        walked.append(rung)
    assert tuple(walked) == ladder(STEPS)
    with pytest.raises(LadderError, match="already at the top"):
        resolve_move("orders", rung, STEPS, up=True)


def test_rollback_walks_back_and_stops_at_the_bottom() -> None:
    move = resolve_move("orders", Rung("service"), STEPS, up=False)
    assert move.target == Rung("canary", 50) and move.is_rollback
    with pytest.raises(LadderError, match="already at the bottom"):
        resolve_move("orders", Rung("monolith"), STEPS, up=False)


def test_canary_off_the_step_list_moves_to_the_next_step() -> None:
    assert resolve_move("o", Rung("canary", 5), STEPS, up=True).target == Rung("canary", 10)
    assert resolve_move("o", Rung("canary", 5), STEPS, up=False).target == Rung("canary", 1)


def test_to_names_a_rung() -> None:
    assert resolve_move("o", Rung("shadow"), STEPS, up=True, to="service").target == Rung("service")
    assert resolve_move("o", Rung("shadow"), STEPS, up=True, to="canary:25").target == Rung(
        "canary", 25
    )
    assert resolve_move("o", Rung("shadow"), STEPS, up=True, to="canary").target == Rung(
        "canary", 1
    )
    assert resolve_move("o", Rung("service"), STEPS, up=False, to="canary").target == Rung(
        "canary", 50
    )
    assert resolve_move("o", Rung("service"), STEPS, up=False, to="monolith").target == Rung(
        "monolith"
    )


@pytest.mark.parametrize(
    ("current", "up", "to", "message"),
    [
        (Rung("shadow"), True, "prod", "unknown stage"),
        (Rung("shadow"), True, "service:5", "only canary takes a percent"),
        (Rung("shadow"), True, "canary:abc", "must be a number"),
        (Rung("shadow"), True, "canary:0", r"\(0, 100\]"),
        (Rung("service"), True, "shadow", "use rollback"),
        (Rung("shadow"), False, "service", "cannot roll back"),
        (Rung("shadow"), False, "canary", "cannot roll back orders to canary"),
    ],
)
def test_bad_targets_are_explained(current: Rung, up: bool, to: str, message: str) -> None:
    with pytest.raises(LadderError, match=message):
        resolve_move("orders", current, STEPS, up=up, to=to)


def test_plan_edits_set_stage_and_canary_percent() -> None:
    assert plan_edits(Move("orders", Rung("shadow"), Rung("canary", 10))) == {
        ("services", "orders", "stage"): "canary",
        ("services", "orders", "canary", "percent"): 10.0,
    }
    assert plan_edits(Move("orders", Rung("canary", 50), Rung("service"))) == {
        ("services", "orders", "stage"): "service",
    }
