"""The publication: exactly the plan's captured tables, each checked to be capturable.

A table without a primary key cannot be keyed in Kafka, and a publication covering a
table whose replica identity is missing makes PostgreSQL *reject* UPDATE and DELETE on
it — breaking the monolith. So such tables are refused before the publication is
touched, with a message saying how to fix them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg2 import sql

from cdc.errors import TableNotCapturable
from cdc.sources.postgres.catalog import translate

__all__ = ["check_capturable", "problems", "sync_publication"]


def problems(conn: Any, tables: Sequence[str]) -> list[str]:
    """One sentence per table that cannot be captured (empty when all are fine)."""
    found: list[str] = []
    with conn.cursor() as cur:
        for qualified in tables:
            schema, _, name = qualified.partition(".")
            cur.execute(
                """
                SELECT c.relkind, c.relreplident,
                       EXISTS (SELECT 1 FROM pg_index i
                               WHERE i.indrelid = c.oid AND i.indisprimary)
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = %s AND c.relname = %s
                """,
                (schema, name),
            )
            row = cur.fetchone()
            if row is None:
                found.append(f"{qualified}: no such table in the source database")
                continue
            kind, ident, has_pk = row
            if kind not in ("r", "p"):
                found.append(f"{qualified}: not a table (relkind {kind!r})")
            elif not has_pk:
                found.append(
                    f"{qualified}: has no primary key; CDC keys events by primary key and "
                    "PostgreSQL would reject UPDATE/DELETE on it once published — add a "
                    "PRIMARY KEY or remove it from the plan's data.tables"
                )
            elif ident == "n":
                found.append(
                    f"{qualified}: REPLICA IDENTITY NOTHING; updates and deletes would be "
                    "rejected once published — ALTER TABLE ... REPLICA IDENTITY DEFAULT"
                )
    return found


def check_capturable(conn: Any, tables: Sequence[str]) -> None:
    if not tables:
        raise TableNotCapturable(
            "no tables to capture: the plan lists no services.*.data.tables owned by the monolith"
        )
    with translate("cannot check the captured tables"):
        found = problems(conn, tables)
    if found:
        raise TableNotCapturable("refusing to capture:\n  " + "\n  ".join(found))


def sync_publication(conn: Any, name: str, tables: Sequence[str]) -> None:
    """Create the publication, or make it list exactly ``tables`` (after checking them)."""
    check_capturable(conn, tables)
    idents = sql.SQL(", ").join(
        sql.Identifier(*t.split(".", 1)) for t in sorted(dict.fromkeys(tables))
    )
    with translate(f"cannot create or alter publication {name}"), conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(
                sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(sql.Identifier(name), idents)
            )
        else:
            cur.execute(
                sql.SQL("ALTER PUBLICATION {} SET TABLE {}").format(sql.Identifier(name), idents)
            )
