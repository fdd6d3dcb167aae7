from __future__ import annotations

import logging
from typing import Any

from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate

log = logging.getLogger("monolith.capture")


class CaptureConfig(AppConfig):
    name = "monolith.capture"
    label = "capture"
    verbose_name = "Change capture (SQLite triggers)"

    def ready(self) -> None:
        from monolith.capture.txn import install_txid_wrapper

        connection_created.connect(install_txid_wrapper, dispatch_uid="capture_txid_wrapper")
        post_migrate.connect(_after_migrate, sender=self, dispatch_uid="capture_post_migrate")


def _after_migrate(sender: Any, using: str = "default", **_: Any) -> None:
    """Django rebuilds a table (and drops its triggers) to alter it on SQLite; put the
    triggers back for every captured table after each ``migrate``."""
    from monolith.capture.capture import reinstall_after_migrate

    reinstall_after_migrate(using)
