"""The exceptions every ``cdc`` module raises; third-party errors are translated here.

::

    CdcError
    ├── ConfigError            the plan's kafka:/cdc: sections or the environment are invalid
    ├── KafkaError             anything the Kafka client reported
    │   ├── BrokerUnavailable  no broker answered within the timeout
    │   └── DeliveryFailed     Kafka did not confirm a record (nothing after it is acked)
    ├── SourceError            the source database refused or broke
    │   ├── TableNotCapturable a captured table has no primary key / replica identity
    │   ├── SlotError          the replication slot is missing, busy or inconsistent
    │   └── DecodeError        a replication message could not be decoded
    └── OffsetStoreError       offsets could not be read or written
"""

from __future__ import annotations

__all__ = [
    "BrokerUnavailable",
    "CdcError",
    "ConfigError",
    "DecodeError",
    "DeliveryFailed",
    "KafkaError",
    "OffsetStoreError",
    "SlotError",
    "SourceError",
    "TableNotCapturable",
]


class CdcError(Exception):
    pass


class ConfigError(CdcError):
    pass


class KafkaError(CdcError):
    pass


class BrokerUnavailable(KafkaError):
    pass


class DeliveryFailed(KafkaError):
    pass


class SourceError(CdcError):
    pass


class TableNotCapturable(SourceError):
    pass


class SlotError(SourceError):
    pass


class DecodeError(SourceError):
    pass


class OffsetStoreError(CdcError):
    pass
