"""The replication connection: slot creation, pgoutput streaming and acknowledgement.

A thin wrapper over psycopg2's ``LogicalReplicationConnection`` (the session is pinned
to ``TimeZone=UTC``, ``DateStyle=ISO``). :meth:`ReplicationStream.ack` is the only way
the slot moves forward; the runner calls it with a transaction's commit end LSN once
Kafka confirmed every record of that transaction.
"""

from __future__ import annotations

import contextlib
import select
import time
from typing import Any

import psycopg2

from cdc.errors import SlotError, SourceError
from cdc.positions import parse_lsn
from cdc.sources.postgres.catalog import replication_connect, translate

__all__ = ["ReplicationStream"]


class ReplicationStream:
    """``ReplicationStream(dsn, slot="strangler_shop", publication="strangler_shop")``."""

    def __init__(self, dsn: str, *, slot: str, publication: str) -> None:
        self.slot = slot
        self.publication = publication
        self._conn = replication_connect(dsn)
        self._cur = self._conn.cursor()
        self.acked_lsn = 0

    def __repr__(self) -> str:
        return f"ReplicationStream(slot={self.slot!r}, publication={self.publication!r})"

    def create_slot(
        self, *, export_snapshot: bool, temporary: bool = False
    ) -> tuple[int, str | None]:
        """Create the slot; returns its consistent point and, when exported, the snapshot
        name (valid until the next command on this connection)."""
        words = ["CREATE_REPLICATION_SLOT", f'"{self.slot}"']
        if temporary:
            words.append("TEMPORARY")
        words += [
            "LOGICAL",
            "pgoutput",
            "EXPORT_SNAPSHOT" if export_snapshot else "NOEXPORT_SNAPSHOT",
        ]
        try:
            self._cur.execute(" ".join(words))
            row = self._cur.fetchone()
        except psycopg2.errors.DuplicateObject as exc:
            raise SlotError(f"replication slot {self.slot} already exists") from exc
        except psycopg2.Error as exc:
            raise SlotError(
                f"cannot create replication slot {self.slot}: {str(exc).strip()}"
            ) from exc
        assert row is not None
        return parse_lsn(row[1]), row[2]

    def start(self, start_lsn: int = 0, *, busy_wait_s: float = 15.0) -> None:
        """Start streaming. A slot still held by a killed predecessor's walsender is
        retried for ``busy_wait_s`` (PostgreSQL notices the dead client quickly)."""
        options = {"proto_version": "1", "publication_names": self.publication}
        if self._conn.server_version >= 140000:  # pg_logical_emit_message() messages
            options["messages"] = "true"
        deadline = time.monotonic() + busy_wait_s
        while True:
            try:
                self._cur.start_replication(
                    slot_name=self.slot,
                    decode=False,
                    start_lsn=start_lsn,
                    options=options,
                    status_interval=10,
                )
                return
            except psycopg2.errors.ObjectInUse as exc:
                if time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                raise SlotError(
                    f"replication slot {self.slot} is in use by another process (another "
                    "`strangle cdc run`?)"
                ) from exc
            except psycopg2.Error as exc:
                raise SlotError(
                    f"cannot stream from slot {self.slot}: {str(exc).strip()}"
                ) from exc

    def read(self) -> tuple[bytes, int] | None:
        """The next message's payload and LSN, or None when nothing is buffered."""
        try:
            msg = self._cur.read_message()
        except psycopg2.Error as exc:
            raise SourceError(f"replication stream from slot {self.slot} broke: {exc}") from exc
        if msg is None:
            return None
        return msg.payload, msg.data_start

    def read_batch(self, limit: int) -> list[tuple[bytes, int]]:
        """Up to ``limit`` buffered messages as (payload, LSN), without waiting."""
        out: list[tuple[bytes, int]] = []
        append = out.append
        read = self._cur.read_message
        try:
            for _ in range(limit):
                msg = read()
                if msg is None:
                    break
                append((msg.payload, msg.data_start))
        except psycopg2.Error as exc:
            raise SourceError(f"replication stream from slot {self.slot} broke: {exc}") from exc
        return out

    def wait(self, timeout_s: float) -> None:
        select.select([self._conn], [], [], timeout_s)

    @property
    def wal_end(self) -> int:
        """The server's WAL end as of its last message or keepalive."""
        return int(self._cur.wal_end or 0)

    def ack(self, lsn: int) -> None:
        """Tell PostgreSQL everything up to ``lsn`` is durable downstream."""
        if lsn <= self.acked_lsn:
            return
        with translate(f"cannot acknowledge {lsn} on slot {self.slot}"):
            self._cur.send_feedback(flush_lsn=lsn, force=True)
        self.acked_lsn = lsn

    def close(self) -> None:
        with contextlib.suppress(psycopg2.Error):
            self._conn.close()

    @property
    def connection(self) -> Any:
        return self._conn
