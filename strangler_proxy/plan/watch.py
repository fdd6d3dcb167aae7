"""Hot reload: watch the plan file, swap in a new valid plan, keep the old one otherwise.

Every ``interval`` (0.2 s) the watcher reads the whole file in one read and hashes it.
New content is parsed only once it has *settled* — the same bytes on two consecutive
polls, and as many bytes as the file's size — so an editor that writes in pieces is
never caught half way, even when the half happens to be a valid plan. A settled valid
plan replaces ``current`` by assigning one reference; a request that took ``current``
before the swap finishes under the plan it started with. An invalid plan is logged
(once per distinct content), counted in ``rejected_total``, and the old plan keeps
serving. SIGHUP (see :meth:`PlanWatcher.install_sighup`) reloads at once, without
waiting for the content to settle.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from strangler_proxy.plan.errors import PlanError
from strangler_proxy.plan.io import LoadedPlan, load_plan, parse_plan_bytes
from strangler_proxy.plan.model import Plan

__all__ = ["PlanWatcher", "PollResult"]

log = logging.getLogger("strangler.plan")

PollResult = str
UNCHANGED: PollResult = "unchanged"
PENDING: PollResult = "pending"
RELOADED: PollResult = "reloaded"
REJECTED: PollResult = "rejected"


class PlanWatcher:
    """Holds the serving plan and replaces it when the file changes.

    ``PlanWatcher(path)`` loads the file now (raising :class:`PlanError` if the initial
    plan is invalid — a proxy must not start without a plan). ``on_reload(old, new)``
    and ``on_reject(error)`` are called after a swap or a rejection (for metrics).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        interval: float = 0.2,
        initial: LoadedPlan | None = None,
        on_reload: Callable[[LoadedPlan, LoadedPlan], None] | None = None,
        on_reject: Callable[[PlanError], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.interval = interval
        self.on_reload = on_reload
        self.on_reject = on_reject
        self._current = initial if initial is not None else load_plan(self.path)
        self.reloads_total = 0
        self.rejected_total = 0
        self.last_error: PlanError | None = None
        self._candidate: str | None = None  # hash seen once, waiting to settle
        self._rejected_hash: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._signal_loop: asyncio.AbstractEventLoop | None = None

    @property
    def current(self) -> LoadedPlan:
        """The serving plan; take it once per request and keep the reference."""
        return self._current

    @property
    def plan(self) -> Plan:
        return self._current.plan

    def poll(self) -> PollResult:
        """One check of the file (what the background loop runs every interval)."""
        read = self._read()
        if read is None:
            return PENDING
        token = read if isinstance(read, str) else read[2]
        if token == self._current.sha256:
            # back to the content being served (e.g. a bad edit was reverted)
            self._candidate = self._rejected_hash = self.last_error = None
            return UNCHANGED
        if token == self._rejected_hash:
            self._candidate = None
            return UNCHANGED
        if token != self._candidate:
            self._candidate = token
            return PENDING
        self._candidate = None
        if isinstance(read, str):
            self._reject(self._unreadable(read[1:]), token)
            return REJECTED
        return self._apply(*read)

    def reload(self, reason: str = "sighup") -> PollResult:
        """Read and apply the file now (no settling): SIGHUP or an operator's request."""
        log.info(
            "plan reload requested",
            extra={"event": "plan_reload_requested", "reason": reason, "plan_path": str(self.path)},
        )
        read = self._read()
        if read is None:
            read = "file is being written"
        if isinstance(read, str):
            self._reject(self._unreadable(read.lstrip("!")), None)
            return REJECTED
        if read[2] == self._current.sha256:
            return UNCHANGED
        return self._apply(*read)

    def _unreadable(self, reason: str) -> PlanError:
        return PlanError.single(
            self.path.name, f"cannot read plan file {str(self.path)!r}: {reason}"
        )

    def _read(self) -> tuple[bytes, float, str] | str | None:
        """(bytes, mtime, sha256); an error text if unreadable; None while in flux."""
        try:
            with self.path.open("rb") as f:
                data = f.read()
                st = os.fstat(f.fileno())
        except OSError as exc:
            return f"!{exc.strerror}"
        if st.st_size != len(data):
            return None
        return data, st.st_mtime, hashlib.sha256(data).hexdigest()

    def _apply(self, data: bytes, mtime: float, digest: str) -> PollResult:
        try:
            new = parse_plan_bytes(data, self.path, mtime)
        except PlanError as exc:
            self._reject(exc, digest)
            return REJECTED
        old, self._current = self._current, new
        self.reloads_total += 1
        self.last_error = None
        self._rejected_hash = None
        log.info(
            "plan reloaded",
            extra={
                "event": "plan_reloaded",
                "plan_path": str(self.path),
                "old_hash": old.sha256,
                "new_hash": new.sha256,
                "warnings": [str(w) for w in new.plan.warnings],
            },
        )
        if self.on_reload is not None:
            self.on_reload(old, new)
        return RELOADED

    def _reject(self, error: PlanError, digest: str | None) -> None:
        self.rejected_total += 1
        self.last_error = error
        self._rejected_hash = digest
        log.error(
            "plan rejected, still serving %s: %s",
            self._current.short_hash,
            error,
            extra={
                "event": "plan_rejected",
                "plan_path": str(self.path),
                "serving_hash": self._current.sha256,
                "errors": [str(f) for f in error.findings],
            },
        )
        if self.on_reject is not None:
            self.on_reject(error)

    # ---- asyncio shell ----

    async def run(self) -> None:
        """Poll forever (until cancelled)."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.poll()
            except Exception:  # never let the watcher die; the old plan keeps serving
                log.exception("plan watcher poll failed", extra={"event": "plan_watch_error"})

    def start(self) -> asyncio.Task[None]:
        """Start polling in the running loop; returns the task."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="plan-watcher")
        return self._task

    async def stop(self) -> None:
        self.remove_sighup()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def install_sighup(self, loop: asyncio.AbstractEventLoop | None = None) -> bool:
        """Reload on SIGHUP. Returns False where signals cannot be handled (not the main
        thread, or no SIGHUP on this platform)."""
        loop = loop or asyncio.get_running_loop()
        sighup = getattr(signal, "SIGHUP", None)
        if sighup is None:
            return False
        try:
            loop.add_signal_handler(sighup, self.reload, "sighup")
        except (RuntimeError, ValueError):
            return False
        self._signal_loop = loop
        return True

    def remove_sighup(self) -> None:
        loop, self._signal_loop = self._signal_loop, None
        if loop is not None and not loop.is_closed():
            loop.remove_signal_handler(signal.SIGHUP)
