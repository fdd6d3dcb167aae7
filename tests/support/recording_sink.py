"""An ExchangeSink for integration tests: one JSON line per exchange in $RECORD_PATH.

Start the proxy with ``STRANGLER_SINK=tests.support.recording_sink:factory``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strangler_proxy.shadow.observation import Exchange, Observation


def _obs(o: Observation | None) -> dict[str, Any] | None:
    if o is None:
        return None
    return {
        "target": o.target,
        "status": o.status,
        "headers": dict(o.headers),
        "body": o.body.decode("latin-1"),
        "error": o.error,
    }


class RecordingSink:
    def __init__(self, path: Path) -> None:
        self.path = path

    def submit(self, exchange: Exchange) -> None:
        r = exchange.request
        line = {
            "service": r.service,
            "route": r.route,
            "method": r.method,
            "path": r.path,
            "query": r.query,
            "request_id": r.request_id,
            "body": r.body.decode("latin-1"),
            "primary": _obs(exchange.primary),
            "candidate": _obs(exchange.candidate),
            "secondary": _obs(exchange.secondary),
        }
        with self.path.open("a") as f:
            f.write(json.dumps(line) + "\n")


def factory(current: Callable[[], Any]) -> RecordingSink:
    return RecordingSink(Path(os.environ["RECORD_PATH"]))


def read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
