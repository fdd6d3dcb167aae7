"""The runner's process-wide GC setting is scoped to the streams that run."""

from __future__ import annotations

import gc

from cdc.runner import YOUNG_GC_THRESHOLD, _fewer_young_collections


def test_young_gc_threshold_raised_while_any_stream_runs_then_restored() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with _fewer_young_collections():
            assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, 10, 10)
            with _fewer_young_collections():  # a second capture in the same process
                pass
            assert gc.get_threshold()[0] == YOUNG_GC_THRESHOLD
        assert gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(50_000, 10, 10)  # a process that chose more is left alone
        with _fewer_young_collections():
            assert gc.get_threshold()[0] == 50_000
        assert gc.get_threshold()[0] == 50_000
    finally:
        gc.set_threshold(*before)
