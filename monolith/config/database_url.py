"""Turn a ``DATABASE_URL`` into a Django ``DATABASES['default']`` entry (pure).

    parse_database_url("postgresql://app:pw@db:5432/shop?sslmode=require")
    parse_database_url("sqlite:///var/monolith.sqlite3")       # relative to base_dir
    parse_database_url("sqlite:////abs/path/monolith.sqlite3")  # absolute
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

SQLITE_OPTIONS: dict[str, Any] = {
    # One writer at a time: take the write lock when the transaction starts instead of
    # failing with "database is locked" when a reader upgrades mid-transaction.
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


class DatabaseUrlError(ValueError):
    pass


def parse_database_url(url: str, *, base_dir: Path) -> dict[str, Any]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        raw = unquote(url[len("sqlite://"):])
        if raw in ("", "/"):
            raise DatabaseUrlError("sqlite URL needs a file path: sqlite:///path/to/db.sqlite3")
        path = raw[1:] if raw.startswith("/") else raw
        if path == ":memory:":
            name: str = ":memory:"
        else:
            candidate = Path(path) if raw.startswith("//") else base_dir / path
            name = str(candidate if candidate.is_absolute() else candidate.resolve())
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": name,
                "OPTIONS": dict(SQLITE_OPTIONS)}
    if scheme in ("postgres", "postgresql", "pgsql", "postgresql+psycopg2"):
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname:
            raise DatabaseUrlError("postgresql URL needs a database name: postgresql://host/db")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": dbname,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": unquote(parts.hostname or ""),
            "PORT": str(parts.port or ""),
            "OPTIONS": dict(parse_qsl(parts.query)),
        }
    raise DatabaseUrlError(
        f"unsupported DATABASE_URL scheme {parts.scheme!r}; use sqlite:/// or postgresql://"
    )
