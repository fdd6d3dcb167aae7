from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


class MemoryOffsetStore:
    """Offsets in a dict — for tests and throwaway runs."""

    def __init__(self) -> None:
        self._offsets: dict[str, dict[str, Any]] = {}

    def load(self, name: str) -> dict[str, Any] | None:
        found = self._offsets.get(name)
        return copy.deepcopy(found) if found is not None else None

    def save(self, name: str, offset: Mapping[str, Any]) -> None:
        self._offsets[name] = copy.deepcopy(dict(offset))

    def delete(self, name: str) -> None:
        self._offsets.pop(name, None)
