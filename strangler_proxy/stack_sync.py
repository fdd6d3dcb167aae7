"""Has the service's copy of the monolith's tables caught up with the initial snapshot?

``strangle up`` opens the proxy only once it has: otherwise the first shadow comparisons
(and canary reads) would compare a full monolith with an empty service, and the report
would start with a warm-up of false mismatches.

* every mapped table has at least as many rows in the service as in the monolith
  (:func:`counts_progress`; "at least" because after a cutover the service holds rows
  of its own), and
* with the SQLite relay (the default stack), the service's ``/healthz``
  ``source_position`` (``COMMIT:CHANGE`` of the newest change it applied) has reached
  the relay's published ``offset`` (a changelog id) and the relay is streaming
  (:func:`position_progress`) — every snapshot row carries that same position, which is
  why the counts are needed too.

Nothing writes through the proxy before it opens, so both together mean caught up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SyncProgress", "SyncTimeout", "both", "count_rows", "counts_progress",
           "position_progress", "wait_in_sync"]


class SyncTimeout(RuntimeError):
    pass


@dataclass(frozen=True)
class SyncProgress:
    done: bool
    detail: str


def position_progress(relay: Any, service: Any) -> SyncProgress | None:
    """From the relay's ``/status`` and the service's ``/healthz`` documents (pure);
    None when the relay is not the SQLite one (no changelog ``offset``)."""
    if not isinstance(relay, Mapping) or relay.get("connector") != "sqlite":
        return None
    offset = relay.get("offset")
    if relay.get("state") != "streaming" or not isinstance(offset, int):
        return SyncProgress(False, f"CDC relay {relay.get('state') or 'starting'}")
    position = service.get("source_position") if isinstance(service, Mapping) else None
    try:
        applied = int(str(position).split(":")[0]) if position is not None else None
    except ValueError:
        applied = None
    if applied is None:
        return SyncProgress(False, f"service has applied nothing yet (relay at {offset})")
    return SyncProgress(applied >= offset, f"service at change {applied} of {offset}")


def count_rows(url: str, tables: list[str]) -> list[int]:
    """Rows per table; a table that does not exist yet counts 0."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            existing = set(sa.inspect(conn).get_table_names())
            return [int(conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one())
                    if t in existing else 0 for t in tables]
    finally:
        engine.dispose()


def _sqlalchemy_url(url: str) -> str:
    return "postgresql+psycopg2://" + url.split("://", 1)[1] if url.startswith(
        ("postgres://", "postgresql://")) else url


def counts_progress(monolith_url: str, service_url: str,
                    tables: Mapping[str, str]) -> SyncProgress:
    """``tables``: monolith table (``schema.table`` or bare) -> service table."""
    sources, targets = list(tables), list(tables.values())
    mono = count_rows(_sqlalchemy_url(monolith_url), [s.split(".")[-1] for s in sources])
    svc = count_rows(_sqlalchemy_url(service_url), targets)
    return SyncProgress(all(t >= m for m, t in zip(mono, svc, strict=True)), ", ".join(
        f"{s} {t}/{m}" for s, m, t in zip(sources, mono, svc, strict=True)))


def both(first: SyncProgress | None, second: SyncProgress) -> SyncProgress:
    if first is None:
        return second
    return SyncProgress(first.done and second.done, f"{first.detail}; rows {second.detail}")


def wait_in_sync(check: Callable[[], SyncProgress], *, timeout_s: float,
                 on_progress: Callable[[SyncProgress], None],
                 alive: Callable[[], bool] = lambda: True) -> SyncProgress:
    """Poll ``check`` until done; :class:`SyncTimeout` after ``timeout_s`` or when a
    component stops (``alive`` false). ``on_progress`` sees each new state once."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        progress = check()
        if progress.done:
            return progress
        if progress.detail != last:
            last = progress.detail
            on_progress(progress)
        if not alive():
            raise SyncTimeout(f"a component stopped during the initial sync ({last})")
        if time.monotonic() > deadline:
            raise SyncTimeout(f"the service has not caught up after {timeout_s:.0f} s: {last}")
        time.sleep(0.5)
