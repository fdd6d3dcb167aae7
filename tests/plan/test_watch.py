from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from strangler_proxy.plan import PlanError, Stage
from strangler_proxy.plan.watch import PlanWatcher
from tests.plan.samples import VALID

AT_SERVICE = VALID.replace("stage: shadow", "stage: service")
INVALID = VALID.replace("sample: 0.5", "sample: 5")


def write(path: Path, text: str) -> None:
    """Atomic replace, as editors and `strangle promote` do."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def stage_of(w: PlanWatcher) -> Stage:
    return w.plan.services["notifications"].stage


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "migration_plan.yaml"
    path.write_text(VALID)
    return path


def test_initial_plan_must_be_valid(tmp_path: Path) -> None:
    path = tmp_path / "migration_plan.yaml"
    path.write_text(INVALID)
    with pytest.raises(PlanError, match=r"shadow\.sample"):
        PlanWatcher(path)
    with pytest.raises(PlanError, match="cannot read plan file"):
        PlanWatcher(tmp_path / "missing.yaml")


def test_valid_new_plan_is_served_within_one_second(plan_file: Path) -> None:
    swaps: list[tuple[str, str]] = []

    async def main() -> float:
        w = PlanWatcher(
            plan_file, on_reload=lambda old, new: swaps.append((old.sha256, new.sha256))
        )
        before = w.current
        w.start()
        await asyncio.sleep(0.3)
        write(plan_file, AT_SERVICE)
        started = time.monotonic()
        while stage_of(w) is not Stage.SERVICE and time.monotonic() - started < 2:
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - started
        await w.stop()
        assert before.plan.services["notifications"].stage is Stage.SHADOW  # held reference
        assert w.reloads_total == 1 and w.rejected_total == 0
        assert swaps == [(before.sha256, w.current.sha256)]
        return elapsed

    assert asyncio.run(main()) < 1.0


def test_invalid_plan_is_rejected_logged_counted_and_old_plan_keeps_serving(
    plan_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rejected: list[PlanError] = []
    w = PlanWatcher(plan_file, on_reject=rejected.append)
    serving = w.current.sha256
    write(plan_file, INVALID)
    caplog.set_level(logging.INFO, logger="strangler.plan")
    results = [w.poll() for _ in range(5)]
    assert results == ["pending", "rejected", "unchanged", "unchanged", "unchanged"]
    assert w.current.sha256 == serving and stage_of(w) is Stage.SHADOW
    assert w.rejected_total == 1 and len(rejected) == 1  # logged once per content
    assert w.last_error is not None
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert message.startswith(f"plan rejected, still serving {serving[:12]}")
    assert "migration_plan.yaml:12: services.notifications.shadow.sample: must be 0..1" in message
    assert errors[0].event == "plan_rejected"  # type: ignore[attr-defined]
    # reverting the bad edit clears the error; fixing the file brings the new plan
    write(plan_file, VALID)
    assert w.poll() == "unchanged" and w.last_error is None
    write(plan_file, INVALID)
    assert [w.poll(), w.poll()] == ["pending", "rejected"]  # a new bad edit is reported again
    assert w.rejected_total == 2
    write(plan_file, AT_SERVICE)
    assert [w.poll(), w.poll()] == ["pending", "reloaded"]
    assert stage_of(w) is Stage.SERVICE and w.last_error is None


def test_half_written_file_is_never_served_even_if_the_half_is_valid(plan_file: Path) -> None:
    w = PlanWatcher(plan_file)
    original = w.current.sha256
    # the new plan adds a service at the end; its first half is itself a valid plan
    extra = "  reviews:\n    url: http://127.0.0.1:8104\n    routes: [/api/reviews]\n"
    full = AT_SERVICE + extra
    half = AT_SERVICE
    with plan_file.open("w") as f:  # in-place write, as a naive editor does
        f.write(half)
        f.flush()
        assert w.poll() == "pending"  # seen once: not trusted yet
        f.write(extra)
        f.flush()
        assert w.poll() == "pending"  # changed again: still not trusted
    assert w.current.sha256 == original
    assert w.poll() == "reloaded"
    assert (
        "reviews" in w.plan.services and w.current.plan.services["notifications"].stage == "service"
    )
    assert full == plan_file.read_text()


def test_read_shorter_than_the_file_is_treated_as_in_flux(
    plan_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = PlanWatcher(plan_file)
    write(plan_file, AT_SERVICE)
    real_fstat = os.fstat

    class Growing:
        def __init__(self, st: os.stat_result) -> None:
            self.st_size = st.st_size + 5  # the writer appended after our read
            self.st_mtime = st.st_mtime

    monkeypatch.setattr("strangler_proxy.plan.watch.os.fstat", lambda fd: Growing(real_fstat(fd)))
    assert [w.poll(), w.poll(), w.poll()] == ["pending"] * 3
    assert w.reloads_total == 0 and w.rejected_total == 0
    monkeypatch.undo()
    assert [w.poll(), w.poll()] == ["pending", "reloaded"]


def test_concurrent_writer_never_exposes_a_partial_plan(plan_file: Path) -> None:
    """A writer rewrites the file in place, in small chunks, while the watcher polls;
    every plan the watcher ever serves is one of the complete versions written."""
    versions = [
        VALID.replace("sample: 0.5", f"sample: 0.{i:02d}") + "#" * 300 for i in range(1, 21)
    ]
    complete = {hashlib.sha256(text.encode()).hexdigest() for text in [VALID, *versions]}
    served: set[str] = set()
    partial_seen = 0
    w = PlanWatcher(plan_file, on_reload=lambda old, new: served.add(new.sha256))
    done = threading.Event()

    def writer() -> None:
        for text in versions:
            with plan_file.open("w") as f:
                for i in range(0, len(text), 64):
                    f.write(text[i : i + 64])
                    f.flush()
                    time.sleep(0.001)
            time.sleep(0.03)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while not done.is_set():
        w.poll()
        if w._candidate is not None and w._candidate not in complete:
            partial_seen += 1
        served.add(w.current.sha256)
        time.sleep(0.04)
    thread.join()
    for _ in range(3):
        w.poll()
    assert partial_seen > 0, "the test never caught the writer mid-write"
    assert served <= complete, "a partial plan was served"
    assert w.current.sha256 == hashlib.sha256(versions[-1].encode()).hexdigest()


def test_deleted_file_keeps_the_old_plan(plan_file: Path) -> None:
    w = PlanWatcher(plan_file)
    plan_file.unlink()
    assert [w.poll(), w.poll(), w.poll()] == ["pending", "rejected", "unchanged"]
    assert w.rejected_total == 1 and stage_of(w) is Stage.SHADOW
    assert w.last_error is not None and "cannot read plan file" in str(w.last_error)
    plan_file.write_text(AT_SERVICE)
    assert [w.poll(), w.poll()] == ["pending", "reloaded"]


def test_sighup_reloads_at_once(plan_file: Path) -> None:
    async def main() -> None:
        w = PlanWatcher(plan_file, interval=3600)  # polling would never get there
        w.start()
        assert w.install_sighup()
        try:
            write(plan_file, AT_SERVICE)
            os.kill(os.getpid(), signal.SIGHUP)
            for _ in range(100):
                if stage_of(w) is Stage.SERVICE:
                    break
                await asyncio.sleep(0.01)
            assert stage_of(w) is Stage.SERVICE and w.reloads_total == 1
            # SIGHUP with an invalid file: rejected, old plan kept
            write(plan_file, INVALID)
            os.kill(os.getpid(), signal.SIGHUP)
            for _ in range(100):
                if w.rejected_total:
                    break
                await asyncio.sleep(0.01)
            assert w.rejected_total == 1 and stage_of(w) is Stage.SERVICE
        finally:
            await w.stop()

    previous = signal.getsignal(signal.SIGHUP)
    try:
        asyncio.run(main())
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_install_sighup_off_the_main_thread_reports_false(plan_file: Path) -> None:
    result: list[bool] = []

    def in_thread() -> None:
        async def main() -> None:
            result.append(PlanWatcher(plan_file).install_sighup())

        asyncio.run(main())

    t = threading.Thread(target=in_thread)
    t.start()
    t.join()
    assert result == [False]


def test_watcher_survives_unexpected_errors(
    plan_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        w = PlanWatcher(plan_file, interval=0.01)
        calls = 0

        def boom() -> str:
            nonlocal calls
            calls += 1
            raise RuntimeError("disk on fire")

        w.poll = boom  # type: ignore[method-assign]
        task = w.start()
        await asyncio.sleep(0.1)
        assert not task.done() and calls > 2
        await w.stop()

    caplog.set_level(logging.ERROR, logger="strangler.plan")
    asyncio.run(main())
    assert any("plan watcher poll failed" in r.getMessage() for r in caplog.records)
