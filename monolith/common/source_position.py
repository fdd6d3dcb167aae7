"""The source position a monolith answer reflects, for the shadow engine's lag check.

Safe requests (GET, HEAD) get ``x-strangler-source-position`` when the SQLite change
capture is installed: ``seq:N.N`` with N the newest changelog id committed when the
answer was complete — read after the view, so every captured change the answer can
reflect is at or below it. An extracted service that has applied changelog id N sends
``seq:N.N`` too (``cdc.sinks.position.Position(N, N).header_value()``), so the shadow
engine can tell "the candidate had not applied what the monolith showed yet" (lag,
confirmed by a re-check) from "the candidate was caught up and still answered
differently" (a mismatch).

The id is the capture's own (AUTOINCREMENT, kept in ``sqlite_sequence``): it moves
only when a captured table changes, unlike the database's file or WAL position, so a
service that is caught up on the captured tables is never reported as behind.

Writes get no header: the monolith's answer reflects its own write, which the service
cannot have applied yet, so a position there would excuse every write difference.
PostgreSQL gets no header either: the commit position of the newest captured-table
transaction a request saw has no cheap exact answer (``pg_current_wal_lsn()`` also
moves for tables nobody captures), so there the engine re-checks without one (see
``strangler_proxy/shadow/recheck.py``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse

from cdc.sinks.position import Position
from cdc.sources.sqlite.triggers import CHANGELOG
from strangler_proxy.shadow.observation import SOURCE_POSITION_HEADER

SAFE_METHODS = frozenset({"GET", "HEAD"})
POSITION_SQL = (
    "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = %s), 0)"
    " WHERE EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = %s)"
)


def header_value(changelog_id: int) -> str:
    """``header_value(42) == "seq:42.42"`` — the form services send for the same change."""
    return Position(changelog_id, changelog_id).header_value()


def captured_position() -> int | None:
    """The newest committed changelog id; None when not SQLite or capture not installed."""
    if connection.vendor != "sqlite":
        return None
    try:
        with connection.cursor() as cursor:
            cursor.execute(POSITION_SQL, [CHANGELOG, CHANGELOG])
            row = cursor.fetchone()
    except DatabaseError:  # no sqlite_sequence yet: nothing captured
        return None
    return int(row[0]) if row else None


class SourcePositionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method in SAFE_METHODS and not response.has_header(SOURCE_POSITION_HEADER):
            position = captured_position()
            if position is not None:
                response[SOURCE_POSITION_HEADER] = header_value(position)
        return response
