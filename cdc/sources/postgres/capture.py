"""Decoded pgoutput messages → :class:`~cdc.events.Change` values (pure).

:class:`ChangeAssembler` keeps the relations PostgreSQL announced and the transaction
being read. Catalog facts pgoutput does not carry (which columns are NOT NULL, the
primary key) come from an injected lookup, so this module makes no I/O itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cdc.errors import DecodeError
from cdc.events import Change, Op
from cdc.positions import SourcePosition
from cdc.sources.postgres.decode import (
    Begin,
    Commit,
    Delete,
    Insert,
    Message,
    Relation,
    Truncate,
    Update,
)
from cdc.sources.postgres.tables import PgColumn, TableCodec, build_codec

__all__ = ["ChangeAssembler", "TableFacts"]


@dataclass(frozen=True, slots=True)
class TableFacts:
    key: tuple[str, ...]
    not_null: frozenset[str]


FactsLookup = Callable[[int, str, str], TableFacts]


class ChangeAssembler:
    """Feed every decoded message with the LSN it arrived at; get changes back.

    ``feed`` returns the changes a message produced (several for a multi-table
    truncate). After a :class:`Commit`, :attr:`committed` holds it until the next Begin.
    """

    def __init__(self, facts: FactsLookup, captured: frozenset[str] | None = None) -> None:
        self._facts = facts
        self._captured = captured
        self._relations: dict[int, TableCodec | None] = {}
        self.begin: Begin | None = None
        self.committed: Commit | None = None

    @property
    def codecs(self) -> dict[int, TableCodec | None]:
        """The announced relations (None: not captured), by relid."""
        return self._relations

    def codec(self, relid: int) -> TableCodec | None:
        try:
            return self._relations[relid]
        except KeyError:
            raise DecodeError(f"change for relation {relid} before its Relation message") from None

    def _relation(self, msg: Relation) -> None:
        if self._captured is not None and f"{msg.namespace}.{msg.name}" not in self._captured:
            self._relations[msg.relid] = None
            return
        facts = self._facts(msg.relid, msg.namespace, msg.name)
        columns = [
            PgColumn(c.name, c.type_oid, c.typmod, c.name in facts.not_null) for c in msg.columns
        ]
        self._relations[msg.relid] = build_codec(msg.namespace, msg.name, columns, facts.key)

    def _change(
        self,
        op: Op,
        codec: TableCodec,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        lsn: int,
    ) -> Change:
        begin = self.begin
        if begin is None:
            raise DecodeError("row change outside a transaction")
        return Change(
            op,
            codec.table,
            before,
            after,
            SourcePosition(begin.final_lsn, lsn),
            ts_us=begin.commit_ts_us,
            tx_id=begin.xid,
            lsn=lsn,
        )

    def feed(self, msg: Message, lsn: int) -> Sequence[Change]:
        cls = msg.__class__
        if cls is Insert:
            assert isinstance(msg, Insert)
            codec = self.codec(msg.relid)
            if codec is None:
                return ()
            return (self._change(Op.CREATE, codec, None, codec.row(msg.new), lsn),)
        if cls is Update:
            assert isinstance(msg, Update)
            codec = self.codec(msg.relid)
            if codec is None:
                return ()
            before: dict[str, Any] | None
            if msg.old is None:
                before = None
                after = codec.row(msg.new)
            elif msg.old_kind == "O":
                before = codec.row(msg.old)
                after = codec.row(msg.new, fill_from=msg.old)
            else:
                before = codec.key_row(msg.old)
                after = codec.row(msg.new)
            return (self._change(Op.UPDATE, codec, before, after, lsn),)
        if cls is Delete:
            assert isinstance(msg, Delete)
            codec = self.codec(msg.relid)
            if codec is None:
                return ()
            before = codec.row(msg.old) if msg.old_kind == "O" else codec.key_row(msg.old)
            return (self._change(Op.DELETE, codec, before, None, lsn),)
        if cls is Begin:
            assert isinstance(msg, Begin)
            self.begin, self.committed = msg, None
            return ()
        if cls is Commit:
            assert isinstance(msg, Commit)
            self.committed, self.begin = msg, None
            return ()
        if cls is Relation:
            assert isinstance(msg, Relation)
            self._relation(msg)
            return ()
        if cls is Truncate:
            assert isinstance(msg, Truncate)
            out = []
            for relid in msg.relids:
                codec = self.codec(relid)
                if codec is not None:
                    out.append(self._change(Op.TRUNCATE, codec, None, None, lsn))
            return out
        return ()
