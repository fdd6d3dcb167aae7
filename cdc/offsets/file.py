from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cdc.errors import OffsetStoreError


class FileOffsetStore:
    """``FileOffsetStore(Path("var/cdc/offsets.json"))`` — one JSON object of offsets by
    name. Writes go to a temporary file that is fsynced and renamed over the old one, so a
    crash leaves either the old or the new offsets, never a torn file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"FileOffsetStore({str(self.path)!r})"

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise OffsetStoreError(f"cannot read offsets {self.path}: {exc}") from exc
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise OffsetStoreError(f"offsets file {self.path} is not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise OffsetStoreError(f"offsets file {self.path} must hold a JSON object")
        return doc

    def load(self, name: str) -> dict[str, Any] | None:
        found = self._read().get(name)
        return dict(found) if isinstance(found, dict) else None

    def _write(self, doc: dict[str, Any]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".offsets-", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, indent=2, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise OffsetStoreError(f"cannot write offsets {self.path}: {exc}") from exc

    def save(self, name: str, offset: Mapping[str, Any]) -> None:
        doc = self._read()
        doc[name] = dict(offset)
        self._write(doc)

    def delete(self, name: str) -> None:
        doc = self._read()
        if doc.pop(name, None) is not None:
            self._write(doc)
