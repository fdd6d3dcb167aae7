"""Has the service's copy of the monolith's tables caught up? Row counts on both sides.

``strangle up`` opens the proxy only once the initial CDC snapshot has reached the
service: otherwise the first shadow comparisons (and canary reads) would compare a full
monolith with an empty service and the report would start with a warm-up of false
mismatches. Nothing writes before the proxy opens, so equal counts mean caught up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["SyncProgress", "SyncTimeout", "count_rows", "wait_in_sync"]


class SyncTimeout(RuntimeError):
    pass


@dataclass(frozen=True)
class SyncProgress:
    """``{table: (monolith rows, service rows)}``"""

    counts: Mapping[str, tuple[int, int]]

    @property
    def done(self) -> bool:
        return all(source == target for source, target in self.counts.values())

    def describe(self) -> str:
        return ", ".join(f"{table} {target}/{source}"
                         for table, (source, target) in self.counts.items())


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


def wait_in_sync(monolith_url: str, service_url: str, tables: Mapping[str, str], *,
                 timeout_s: float, on_progress: Callable[[SyncProgress], None],
                 alive: Callable[[], bool] = lambda: True) -> SyncProgress:
    """Poll until every ``monolith table -> service table`` has as many rows on both
    sides; raises :class:`SyncTimeout` (with the counts) after ``timeout_s``."""
    sources, targets = list(tables), list(tables.values())
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        progress = SyncProgress(dict(zip(sources, zip(
            count_rows(_sqlalchemy_url(monolith_url), [s.split(".")[-1] for s in sources]),
            count_rows(_sqlalchemy_url(service_url), targets), strict=True), strict=True)))
        if progress.done:
            return progress
        if progress.describe() != last:
            last = progress.describe()
            on_progress(progress)
        if not alive():
            raise SyncTimeout(f"a component stopped during the initial sync ({last})")
        if time.monotonic() > deadline:
            raise SyncTimeout(f"the service has not caught up after {timeout_s:.0f} s: {last}")
        time.sleep(0.5)
