"""Can the monolith's PostgreSQL feed CDC? Checked by ``strangle up`` before it starts.

Logical replication needs ``wal_level = logical`` on the server and a role allowed to
replicate (the ``REPLICATION`` attribute, or superuser). Without them the CDC runner
would only fail after the monolith and the service were up, deep in its log; this says
so at once, with the fix. :func:`cdc_problems` decides (pure); :func:`check_cdc_source`
asks the server.
"""

from __future__ import annotations

__all__ = ["cdc_problems", "check_cdc_source", "is_postgres"]


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://", "postgresql+"))


def cdc_problems(*, wal_level: str, role: str, can_replicate: bool) -> list[str]:
    """What stops logical replication, each with its fix; empty when nothing does."""
    problems = []
    if wal_level != "logical":
        problems.append(
            f"wal_level is {wal_level!r}, logical decoding needs 'logical' (ALTER SYSTEM SET "
            "wal_level = logical; then restart the server)")
    if not can_replicate:
        problems.append(
            f"role {role!r} may not replicate (ALTER ROLE \"{role}\" REPLICATION, or connect "
            "as a role that may)")
    return problems


def check_cdc_source(url: str) -> list[str]:
    """Ask the monolith's server (``url``: its ``DATABASE_URL``); a connection failure is
    a problem too."""
    import psycopg2

    from cdc.config import pg_dsn

    try:
        conn = psycopg2.connect(pg_dsn(url), connect_timeout=10)
    except psycopg2.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        return [f"cannot connect: {first}"]
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('wal_level'), current_user, "
                        "rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user")
            wal_level, role, can_replicate = cur.fetchone() or ("unknown", "?", False)
    finally:
        conn.close()
    return cdc_problems(wal_level=str(wal_level), role=str(role),
                        can_replicate=bool(can_replicate))
