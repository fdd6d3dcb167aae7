"""The declared mapping from monolith tables to a service's models (pure).

From the plan's ``services.<name>.data.tables``::

    tables:
      notifications_notification: notification          # table -> model, same columns
      notifications_preference:
        model: preference
        key: [id]                                        # target key columns (default [id])
        rename: {customer_id: owner_id}                  # source column -> target column
        transform: {channel: lower}                      # target column -> transform name
        ignore: [legacy_flag]                            # source columns dropped silently

A source key may be ``table`` or ``schema.table``. Once the target models are known,
:meth:`SinkMapping.bind` records every model's column kinds, so the planner can refuse
unknown columns and coerce values to what each column holds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cdc.sinks.decode import COERCIONS, EPOCH, DecodeError


class MappingError(ValueError):
    """The declared mapping is invalid; the message names the bad key."""


def _epoch_ms(value: Any) -> dt.datetime:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DecodeError(f"epoch_ms needs an integer, got {value!r}")
    return EPOCH + dt.timedelta(milliseconds=value)


def _text(fn: Callable[[str], str]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        if not isinstance(value, str):
            raise DecodeError(f"expected text, got {value!r}")
        return fn(value)

    return apply


TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    **COERCIONS,
    "lower": _text(str.lower),
    "upper": _text(str.upper),
    "strip": _text(str.strip),
    "epoch_ms": _epoch_ms,
}


@dataclass(frozen=True, slots=True)
class TableMapping:
    source: str  # "table" or "schema.table" as declared
    model: str  # the target table name in the service database
    key: tuple[str, ...] = ("id",)
    rename: Mapping[str, str] = field(default_factory=dict)
    transform: Mapping[str, str] = field(default_factory=dict)
    ignore: frozenset[str] = frozenset()
    columns: Mapping[str, str] | None = None  # target column -> kind, once bound

    def target_column(self, source_column: str) -> str:
        return self.rename.get(source_column, source_column)


@dataclass(frozen=True, slots=True)
class SinkMapping:
    tables: tuple[TableMapping, ...]

    def for_source(self, schema: str | None, table: str) -> TableMapping | None:
        for mapping in self.tables:
            if mapping.source == table or (schema and mapping.source == f"{schema}.{table}"):
                return mapping
        return None

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(m.model for m in self.tables)

    def bind(self, columns: Mapping[str, Mapping[str, str]]) -> SinkMapping:
        """Attach each model's ``{column: kind}``; refuse references to missing columns."""
        bound = []
        for mapping in self.tables:
            if mapping.model not in columns:
                raise MappingError(f"tables.{mapping.source}: unknown model {mapping.model!r}")
            kinds = dict(columns[mapping.model])
            referenced = [*mapping.key, *mapping.rename.values(), *mapping.transform]
            for column in referenced:
                if column not in kinds:
                    raise MappingError(
                        f"tables.{mapping.source}: model {mapping.model!r} has no column {column!r}"
                    )
            bound.append(dataclasses.replace(mapping, columns=kinds))
        return SinkMapping(tuple(bound))


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise MappingError(f"{where}: expected a column name or a list of names, got {value!r}")


def _str_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise MappingError(f"{where}: expected a mapping of names, got {value!r}")
    return dict(value)


_TABLE_KEYS = {"model", "key", "rename", "transform", "ignore"}


def table_mapping(source: str, spec: Any) -> TableMapping:
    where = f"tables.{source}"
    if isinstance(spec, str):
        return TableMapping(source=source, model=spec)
    if not isinstance(spec, Mapping):
        raise MappingError(f"{where}: expected a model name or a mapping, got {spec!r}")
    unknown = set(spec) - _TABLE_KEYS
    if unknown:
        raise MappingError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    model = spec.get("model")
    if not isinstance(model, str) or not model:
        raise MappingError(f"{where}.model: required, a table name")
    transform = _str_map(spec.get("transform"), f"{where}.transform")
    for column, name in transform.items():
        if name not in TRANSFORMS:
            raise MappingError(
                f"{where}.transform.{column}: unknown transform {name!r} "
                f"(known: {', '.join(sorted(TRANSFORMS))})"
            )
    key = _names(spec.get("key", ["id"]), f"{where}.key")
    if not key:
        raise MappingError(f"{where}.key: at least one column")
    return TableMapping(
        source=source,
        model=model,
        key=key,
        rename=_str_map(spec.get("rename"), f"{where}.rename"),
        transform=transform,
        ignore=frozenset(_names(spec.get("ignore", []), f"{where}.ignore")),
    )


def sink_mapping(tables: Any) -> SinkMapping:
    """Parse the plan's ``data.tables`` value."""
    if not isinstance(tables, Mapping) or not tables:
        raise MappingError(f"tables: expected a non-empty mapping table -> model, got {tables!r}")
    parsed = tuple(table_mapping(str(source), spec) for source, spec in tables.items())
    models = [m.model for m in parsed]
    for model in models:
        if models.count(model) > 1:
            raise MappingError(f"tables: model {model!r} is the target of two tables")
    return SinkMapping(parsed)
