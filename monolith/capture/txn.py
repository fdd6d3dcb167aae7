"""The connection wrapper that gives each SQLite write transaction its transaction id.

Installed on every SQLite connection (``connection_created``). Before the first write of
a transaction it bumps ``strangler_txn`` inside that transaction (see
:mod:`cdc.sources.sqlite.txids` for why that makes ids exact):

* inside ``atomic()``: once per transaction. Whether the current transaction already
  bumped is remembered as a no-op ``on_commit`` marker: Django drops it on commit, on
  rollback, and with a rolled-back savepoint — exactly when the bump itself is undone;
* in autocommit: the write runs in one ``BEGIN IMMEDIATE ... COMMIT`` with its bump,
  issued on the raw connection without Django's ``atomic()`` bookkeeping (a single
  statement is a transaction of its own either way). SQLite cannot
  commit while an ``INSERT ... RETURNING`` still has rows to hand out, so those rows are
  read before the commit and served from memory to the caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from cdc.sources.sqlite.txids import bump, is_installed, is_write, returns_rows


class BufferedCursor:
    """Stands in for a sqlite3 cursor whose statement already ran to completion; the
    next ``execute`` goes back to the real cursor."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor
        self._rows: list[Any] = cursor.fetchall()
        self.description = cursor.description
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid

    def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        size = size or getattr(self._cursor, "arraysize", 1)
        out, self._rows = self._rows[:size], self._rows[size:]
        return out

    def fetchall(self) -> list[Any]:
        out, self._rows = self._rows, []
        return out

    def __iter__(self) -> Iterator[Any]:
        while self._rows:
            yield self._rows.pop(0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class TxidWrapper:
    """When capture is not installed the wrapper stays out of the way (no ``atomic()``,
    no bump); whether it is installed is looked up again every ``recheck_s``."""

    def __init__(self, recheck_s: float = 2.0) -> None:
        self._marker: Callable[[], None] = lambda: None
        self.recheck_s = recheck_s
        self._installed = False
        self._checked_at = float("-inf")

    def _capturing(self, connection: Any) -> bool:
        now = time.monotonic()
        if now - self._checked_at >= self.recheck_s:
            self._installed = is_installed(connection.connection)
            self._checked_at = now
        return self._installed

    def _marked(self, connection: Any) -> bool:
        marker = self._marker
        return any(entry[1] is marker for entry in connection.run_on_commit)

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool,
        context: dict[str, Any],
    ) -> Any:
        connection = context["connection"]
        if not is_write(sql) or not self._capturing(connection):
            return execute(sql, params, many, context)
        if connection.in_atomic_block:
            if not self._marked(connection) and bump(connection.connection) is not None:
                connection.on_commit(self._marker)
            return execute(sql, params, many, context)
        if not connection.get_autocommit():  # manual transaction management
            bump(connection.connection)
            return execute(sql, params, many, context)
        wrapper = context["cursor"]
        if isinstance(wrapper.cursor, BufferedCursor):
            wrapper.cursor = wrapper.cursor._cursor
        raw = connection.connection
        raw.execute("BEGIN IMMEDIATE")
        try:
            bump(raw)
            result = execute(sql, params, many, context)
            if returns_rows(sql):
                wrapper.cursor = BufferedCursor(wrapper.cursor)
        except BaseException:
            raw.execute("ROLLBACK")
            raise
        raw.execute("COMMIT")
        return result


def install_txid_wrapper(sender: Any, connection: Any, **_: Any) -> None:
    if connection.vendor != "sqlite":
        return
    if not any(isinstance(w, TxidWrapper) for w in connection.execute_wrappers):
        connection.execute_wrappers.append(TxidWrapper())
