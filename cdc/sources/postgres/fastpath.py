"""The streaming hot path: pgoutput bytes of an insert straight to Kafka record bytes.

Most changes are inserts and (``REPLICA IDENTITY DEFAULT``) updates without a before
image — exactly one record each. For those, :class:`OneRecordPath` skips the message
value, the row dict and the :class:`~cdc.events.Change`: the relation's
:class:`~cdc.sources.postgres.rowjson.RowJson` reads the tuple's column values as JSON
text and the table's :class:`~cdc.converter.ChangeTemplate` splices them into key and
value bytes (byte for byte what the general path writes). Each record is counted on its
transaction's :class:`~cdc.delivery.Txn` by one delivery callback per transaction, so
acknowledgement stays exactly as in the general path. Anything else — other messages,
TOASTed or malformed values, conversion errors — returns False and goes the general way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cdc.converter import ChangeTemplate, JsonConverter, TxnParts
from cdc.delivery import Txn
from cdc.events import Change, Connector, Op
from cdc.kafka import DeliveryCallback, Producer
from cdc.positions import SourcePosition
from cdc.sources.postgres.capture import ChangeAssembler
from cdc.sources.postgres.decode import Begin
from cdc.sources.postgres.tables import TableCodec

__all__ = ["OneRecordPath"]

_INSERT, _UPDATE, _NEW = 0x49, 0x55, 0x4E


class _Entry:
    __slots__ = ("begin", "codec", "read", "template", "topic", "txn_c", "txn_u")

    def __init__(self, codec: TableCodec, template: ChangeTemplate) -> None:
        assert codec.json is not None
        self.codec = codec
        self.read = codec.json.read
        self.template = template
        self.topic = template.topic
        self.begin: Begin | None = None
        self.txn_c: TxnParts | None = None
        self.txn_u: TxnParts | None = None


class OneRecordPath:
    """``path.handle(payload, lsn, txn)`` → True when the message was produced here."""

    def __init__(
        self,
        assembler: ChangeAssembler,
        producer: Producer,
        converter: JsonConverter,
        connector: Connector,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
        delivery_hook: Callable[[Change], None] | None = None,
    ) -> None:
        self._assembler = assembler
        self._codecs = assembler.codecs
        self._producer = producer
        self._produce = producer.produce_counted
        self._converter = converter
        self._connector = connector
        self._clock = clock_ns
        self._hook = delivery_hook
        self._entries: dict[int, _Entry] = {}
        self._cb_txn: Txn[Any] | None = None
        self._cb: DeliveryCallback | None = None
        self._created = self._updated = 0
        self.last: tuple[TableCodec, str, int, int] | None = None

    @property
    def sent(self) -> dict[str, int]:
        """Records sent so far by op."""
        return {"c": self._created, "u": self._updated}

    def take_sent(self) -> dict[str, int]:
        """Records sent by op since the last call."""
        sent = self.sent
        self._created = self._updated = 0
        return sent

    def _entry(self, relid: int) -> _Entry | None:
        codec = self._codecs.get(relid)
        if codec is None or codec.json is None:
            return None
        entry = self._entries.get(relid)
        if entry is None or entry.codec is not codec:
            template = self._converter.change_template(self._connector, codec.table)
            self._producer.ensure_topic(template.topic)
            entry = self._entries[relid] = _Entry(codec, template)
        return entry

    def _callback(
        self, txn: Txn[Any], entry: _Entry, op: str, begin: Begin, lsn: int
    ) -> DeliveryCallback:
        """One counting callback per transaction; per record only with a delivery hook."""
        hook = self._hook
        if hook is not None:
            change = _change(entry, op, begin, lsn)
            return self._producer.counting_callback(txn, lambda: hook(change))
        self._cb = self._producer.counting_callback(txn)
        self._cb_txn = txn
        return self._cb

    def handle(self, payload: bytes, lsn: int, txn: Txn[Any]) -> bool:
        tag = payload[0]
        if (tag != _INSERT and tag != _UPDATE) or len(payload) < 8 or payload[5] != _NEW:
            return False
        relid = int.from_bytes(payload[1:5], "big")
        entry = self._entries.get(relid)
        if entry is None or entry.codec is not self._codecs.get(relid):
            entry = self._entry(relid)
            if entry is None:
                return False
        parts = entry.read(payload, 6)
        if parts is None:
            return False
        begin = self._assembler.begin
        if begin is None:
            return False
        if entry.begin is not begin:
            entry.begin = begin
            entry.txn_c = entry.txn_u = None
        if tag == _INSERT:
            op = "c"
            txn_parts = entry.txn_c
            if txn_parts is None:
                txn_parts = entry.txn_c = entry.template.txn(
                    op, begin.final_lsn, begin.commit_ts_us, begin.xid
                )
            self._created += 1
        else:
            op = "u"
            txn_parts = entry.txn_u
            if txn_parts is None:
                txn_parts = entry.txn_u = entry.template.txn(
                    op, begin.final_lsn, begin.commit_ts_us, begin.xid
                )
            self._updated += 1
        template = entry.template
        value = template.value(txn_parts, parts, lsn, self._clock())
        key = template.key(parts)
        callback = self._cb
        if self._cb_txn is not txn or callback is None or self._hook is not None:
            callback = self._callback(txn, entry, op, begin, lsn)
        txn.pending += 1
        txn.records += 1
        try:
            self._produce(entry.topic, value, key, -1, callback)
        except Exception:  # queue full or a client error: the careful way
            self._producer.produce_with(entry.topic, key, value, callback)
        self.last = (entry.codec, op, lsn, begin.commit_ts_us)
        return True


def _change(entry: _Entry, op: str, begin: Begin, lsn: int) -> Change:
    """A Change standing for a fast-path record (for the delivery hook only)."""
    return Change(
        Op(op), entry.codec.table, None, None, SourcePosition(begin.final_lsn, lsn),
        ts_us=begin.commit_ts_us, tx_id=begin.xid, lsn=lsn,
    )
