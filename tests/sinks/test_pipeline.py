"""The apply pipeline: one job in flight, in order, a failure stops the next job."""

from __future__ import annotations

import threading

import pytest

from cdc.sinks.pipeline import ApplyPipeline


def test_jobs_run_one_at_a_time_in_order_while_the_caller_goes_on() -> None:
    pipeline: ApplyPipeline[int] = ApplyPipeline()
    release = threading.Event()
    ran: list[int] = []

    def job(n: int) -> int:
        if n == 1:
            assert release.wait(5)
        ran.append(n)
        return n

    assert pipeline.submit(lambda: job(1)) is None
    assert pipeline.busy  # submit returned while job 1 still runs: the caller plans on
    release.set()
    assert pipeline.submit(lambda: job(2)) == 1  # waited for job 1 before starting job 2
    assert pipeline.collect() == 2
    assert ran == [1, 2] and not pipeline.busy
    pipeline.close()


def test_a_failed_job_raises_on_the_next_submit_which_then_does_not_start() -> None:
    pipeline: ApplyPipeline[int] = ApplyPipeline()
    started: list[str] = []

    def boom() -> int:
        raise RuntimeError("database gone")

    pipeline.submit(boom)
    with pytest.raises(RuntimeError, match="database gone"):
        pipeline.submit(lambda: started.append("next") or 0)
    assert started == [] and not pipeline.busy
    pipeline.close()
