"""The audit trail: every stage change, appended as one JSON line.

Who moved which service from where to where, why, with which gate figures, and the
hash of the plan that resulted. Written by ``strangle promote/rollback`` and — for hand
edits of the plan — by the proxy when it reloads (:func:`record_reload_changes`).

The history file lives next to the plan (``var/history.jsonl``) unless
``$STRANGLE_HISTORY`` or the plan's ``audit: {history: PATH}`` says otherwise.
Appends hold an exclusive ``flock`` on the history file; the CLI holds it across
"write plan, append entry", so a proxy reloading that plan in between waits, finds the
CLI's entry (same plan hash) and does not record the change a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import getpass
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from strangler_proxy.gates import Rung
from strangler_proxy.plan.io import LoadedPlan
from strangler_proxy.plan.model import Plan
from strangler_proxy.promotion import rungs_of

__all__ = [
    "HISTORY_ENV",
    "Entry",
    "History",
    "current_actor",
    "history_path",
    "record_reload_changes",
    "reload_recorder",
    "stage_changes",
]

log = logging.getLogger("strangler.audit")

HISTORY_ENV = "STRANGLE_HISTORY"
DEFAULT_HISTORY = Path("var") / "history.jsonl"
PLAN_EDIT = "plan-edit"


def history_path(plan_path: Path, plan_data: Mapping[str, Any] | None = None) -> Path:
    """Where the history for ``plan_path`` lives (env, then plan ``audit.history``)."""
    configured = os.environ.get(HISTORY_ENV)
    if not configured and plan_data is not None:
        audit = plan_data.get("audit")
        if isinstance(audit, Mapping) and isinstance(audit.get("history"), str):
            configured = audit["history"]
    path = Path(configured) if configured else DEFAULT_HISTORY
    return path if path.is_absolute() else plan_path.resolve().parent / path


def current_actor() -> str:
    """The user running the CLI: ``$STRANGLE_ACTOR``, ``$USER``, else the login name."""
    for name in ("STRANGLE_ACTOR", "USER", "LOGNAME"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Entry:
    """One stage change. ``from_``/``to`` are ``None`` when a service was added/removed."""

    service: str
    from_: Rung | None
    to: Rung | None
    action: str  # promote | rollback | plan-edit
    actor: str  # a user name, or "plan-edit" for changes noticed on reload
    plan_hash: str
    reason: str | None = None
    forced: bool = False
    figures: Mapping[str, Any] | None = None
    verdicts: Sequence[Mapping[str, Any]] = ()
    ts: str = field(default_factory=_now)

    def to_json(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "service": self.service,
            "from": None if self.from_ is None else self.from_.to_json(),
            "to": None if self.to is None else self.to.to_json(),
            "action": self.action,
            "actor": self.actor,
            "reason": self.reason,
            "forced": self.forced,
            "figures": None if self.figures is None else dict(self.figures),
            "verdicts": [dict(v) for v in self.verdicts],
            "plan_hash": self.plan_hash,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Entry:
        return cls(
            service=str(raw["service"]),
            from_=None if raw.get("from") is None else Rung.from_json(raw["from"]),
            to=None if raw.get("to") is None else Rung.from_json(raw["to"]),
            action=str(raw["action"]),
            actor=str(raw["actor"]),
            plan_hash=str(raw["plan_hash"]),
            reason=raw.get("reason"),
            forced=bool(raw.get("forced", False)),
            figures=raw.get("figures"),
            verdicts=tuple(raw.get("verdicts") or ()),
            ts=str(raw["ts"]),
        )


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class History:
    """The JSON-lines history file. Unreadable lines are reported, never dropped."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def locked(self) -> Iterator[IO[str]]:
        """Exclusive lock on the history; yields the file opened for reading+appending."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def append(self, entries: Sequence[Entry], handle: IO[str] | None = None) -> None:
        if not entries:
            return
        if handle is None:
            with self.locked() as locked_handle:
                self._write(locked_handle, entries)
        else:
            self._write(handle, entries)

    @staticmethod
    def _write(handle: IO[str], entries: Sequence[Entry]) -> None:
        handle.seek(0, os.SEEK_END)
        if handle.tell() > 0:
            handle.seek(handle.tell() - 1)
            if handle.read(1) != "\n":  # a torn last line must not swallow ours
                handle.write("\n")
        handle.write("".join(json.dumps(e.to_json(), sort_keys=True) + "\n" for e in entries))
        handle.flush()
        os.fsync(handle.fileno())

    def read(
        self, service: str | None = None, handle: IO[str] | None = None
    ) -> tuple[list[Entry], list[Problem]]:
        if handle is not None:
            handle.seek(0)
            text = handle.read()
        else:
            try:
                text = self.path.read_text(encoding="utf-8")
            except (FileNotFoundError, NotADirectoryError):
                return [], []
        entries: list[Entry] = []
        problems: list[Problem] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = Entry.from_json(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                problems.append(Problem(number, f"unreadable entry skipped ({exc})"))
                continue
            if service is None or entry.service == service:
                entries.append(entry)
        return entries, problems

    def stage_since(self, service: str) -> str | None:
        """When the service entered its current stage (last recorded change), if known."""
        entries, _ = self.read(service)
        return entries[-1].ts if entries else None


def stage_changes(
    old: Mapping[str, Rung], new: Mapping[str, Rung]
) -> list[tuple[str, Rung | None, Rung | None]]:
    """(service, from, to) for every service whose rung differs (pure)."""
    changes: list[tuple[str, Rung | None, Rung | None]] = []
    for name in sorted({*old, *new}):
        before, after = old.get(name), new.get(name)
        if before != after:
            changes.append((name, before, after))
    return changes


def _action(before: Rung | None, after: Rung | None) -> str:
    if before is not None and after is not None and after.rank < before.rank:
        return "rollback"
    return "promote"


def record_reload_changes(
    old_plan: Plan,
    new_plan: Plan,
    *,
    plan_path: Path,
    plan_hash: str,
    plan_data: Mapping[str, Any] | None = None,
    figures: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Entry]:
    """Append a ``plan-edit`` entry for each stage change between two plans.

    ``figures`` maps a service to what to keep as its figures (the proxy passes its
    counters at the swap, the baseline for judging the new stage).

    Called by the proxy after it swapped in a reloaded plan. A change already recorded
    as the service's latest entry with this plan hash is skipped, so a ``strangle
    promote`` is recorded once however many proxies reload it. Returns the entries
    written. Blocking (file lock + fsync): call it from a worker thread in async code.
    """
    changes = stage_changes(rungs_of(old_plan), rungs_of(new_plan))
    if not changes:
        return []
    history = History(history_path(plan_path, plan_data))
    with history.locked() as handle:
        recorded, _ = history.read(handle=handle)
        latest = {e.service: (e.to, e.plan_hash) for e in recorded}
        entries = [
            Entry(
                service=name,
                from_=before,
                to=after,
                action=_action(before, after),
                actor=PLAN_EDIT,
                plan_hash=plan_hash,
                reason="plan file edited; change noticed by the proxy on reload",
                figures=(figures or {}).get(name),
            )
            for name, before, after in changes
            if latest.get(name) != (after, plan_hash)
        ]
        history.append(entries, handle)
    return entries


def reload_recorder(
    snapshot: Callable[[], Mapping[str, Mapping[str, Any]]] | None = None,
) -> Callable[[LoadedPlan, LoadedPlan], None]:
    """An ``on_reload(old, new)`` callback for the proxy's PlanWatcher.

    Records hand edits via :func:`record_reload_changes` on one background thread (in
    order, off the event loop). ``snapshot()`` is taken at the swap and gives each
    service's figures to keep (see :func:`strangler_proxy.figures.baselines`). A history
    that cannot be written is logged, never allowed to disturb the reload.
    """
    executor: ThreadPoolExecutor | None = None

    def work(
        old: LoadedPlan, new: LoadedPlan, figures: Mapping[str, Mapping[str, Any]] | None
    ) -> None:
        try:
            written = record_reload_changes(
                old.plan, new.plan, plan_path=new.path, plan_hash=new.sha256, figures=figures
            )
        except OSError as exc:
            log.warning(
                "could not record plan change in the history",
                extra={"error": str(exc), "plan_sha256": new.sha256},
            )
            return
        for entry in written:
            log.info(
                "stage change recorded",
                extra={"service": entry.service, "to": str(entry.to), "actor": entry.actor},
            )

    def on_reload(old: LoadedPlan, new: LoadedPlan) -> None:
        nonlocal executor
        figures = snapshot() if snapshot is not None else None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            work(old, new, figures)
            return
        if executor is None:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit")
        executor.submit(work, old, new, figures)

    return on_reload
