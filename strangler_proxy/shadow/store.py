"""The shadow store: tallies and samples behind SQLAlchemy Core.

SQLite file by default (``sqlite:///var/shadow.db``), PostgreSQL by URL. Tables are
created on first use. Database errors surface as :class:`StoreError` with the URL
(password hidden) and what was being done.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from strangler_proxy.shadow.records import Endpoint, Sample, Tally, TallyKey

DEFAULT_URL = "sqlite:///var/shadow.db"

metadata = sa.MetaData()

tally_table = sa.Table(
    "shadow_tally",
    metadata,
    sa.Column("service", sa.String(200), nullable=False),
    sa.Column("route", sa.String(500), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("bucket", sa.BigInteger, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("sig_hash", sa.String(40), nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
    sa.Column("ignored", sa.Text, nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint(
        "service", "route", "method", "bucket", "source", "outcome", "sig_hash"
    ),
)

sample_table = sa.Table(
    "shadow_sample",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("service", sa.String(200), nullable=False),
    sa.Column("route", sa.String(500), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("field", sa.String(1000), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("request_id", sa.String(200), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Index("ix_shadow_sample_key", "service", "route", "method", "field", "source", "ts"),
)


class StoreError(Exception):
    """The shadow store could not be opened, read or written."""


def resolve_url(url: str | None, base_dir: Path | None = None) -> str:
    """The store URL with a relative SQLite path made absolute against ``base_dir``
    (the plan file's directory), so the proxy and the CLI find the same file."""
    url = url or DEFAULT_URL
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"shadow_store.url {url!r} is not a database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        if not path.is_absolute() and base_dir is not None:
            return parsed.set(database=str((base_dir / path).resolve())).render_as_string(
                hide_password=False
            )
    return url


def _hash(key: TallyKey) -> str:
    raw = "\n".join(key.signature) + "\0" + "\n".join(key.ignored)
    return hashlib.sha1(raw.encode()).hexdigest()


class ShadowStore:
    """``ShadowStore("sqlite:///var/shadow.db")`` — creates its tables on first use."""

    def __init__(self, url: str = DEFAULT_URL) -> None:
        self.url = url
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise StoreError(f"shadow store URL {url!r} is not a database URL: {exc}") from None
        self._shown = parsed.render_as_string(hide_password=True)
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise StoreError(f"shadow store {self._shown}: use sqlite or postgresql")
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            if parsed.database not in (None, "", ":memory:"):
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
            if parsed.drivername == "postgresql":  # psycopg2 is what the project ships
                parsed = parsed.set(drivername="postgresql+psycopg2")
        try:
            self.engine: Engine = sa.create_engine(parsed, **kwargs)
        except (ImportError, SQLAlchemyError) as exc:
            raise StoreError(f"shadow store {self._shown}: cannot open: {exc}") from exc
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._ready = False

    def __repr__(self) -> str:
        return f"ShadowStore({self._shown!r})"

    def _ensure(self) -> None:
        if not self._ready:
            self._run("create tables", lambda c: metadata.create_all(c))
            self._ready = True

    def _run(self, what: str, fn: Any) -> Any:
        try:
            with self.engine.begin() as conn:
                return fn(conn)
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise StoreError(f"shadow store {self._shown}: cannot {what}: {reason}") from exc

    def close(self) -> None:
        self.engine.dispose()

    # -- writing -------------------------------------------------------------------

    def write(self, tallies: Mapping[TallyKey, int], samples: Sequence[Sample] = ()) -> None:
        """Add counts and samples in one transaction."""
        self._ensure()
        rows = [
            {
                "service": k.endpoint.service,
                "route": k.endpoint.route,
                "method": k.endpoint.method,
                "bucket": k.bucket,
                "source": k.source,
                "outcome": k.outcome,
                "sig_hash": _hash(k),
                "signature": json.dumps(list(k.signature)),
                "ignored": json.dumps(list(k.ignored)),
                "count": n,
            }
            for k, n in tallies.items()
            if n
        ]
        sample_rows = [_sample_row(s) for s in samples]

        def run(conn: sa.Connection) -> None:
            if rows:
                insert = (sqlite.insert if self.dialect == "sqlite" else postgresql.insert)(
                    tally_table
                )
                conn.execute(
                    insert.on_conflict_do_update(
                        index_elements=[c.name for c in tally_table.primary_key.columns],
                        set_={"count": tally_table.c["count"] + insert.excluded["count"]},
                    ),
                    rows,
                )
            if sample_rows:
                conn.execute(sample_table.insert(), sample_rows)

        self._run("write comparisons", run)

    # -- reading -------------------------------------------------------------------

    def tallies(self, service: str, since: float | None = None) -> list[Tally]:
        self._ensure()
        t = tally_table
        query = sa.select(t).where(t.c.service == service)
        if since is not None:
            query = query.where(t.c.bucket >= int(since) - int(since) % 60)
        rows = self._run("read comparisons", lambda c: c.execute(query).all())
        return [
            Tally(
                TallyKey(
                    Endpoint(r.service, r.route, r.method),
                    int(r.bucket),
                    r.source,
                    r.outcome,
                    tuple(json.loads(r.signature)),
                    tuple(json.loads(r.ignored)),
                ),
                int(r.count),
            )
            for r in rows
        ]

    def samples(
        self,
        service: str,
        fields: Iterable[tuple[Endpoint, str]] | None = None,
        *,
        limit: int = 3,
        source: str | None = None,
    ) -> list[Sample]:
        """The newest samples, at most ``limit`` per (endpoint, field)."""
        self._ensure()
        s = sample_table
        query = sa.select(s).where(s.c.service == service).order_by(s.c.ts.desc(), s.c.id.desc())
        if source is not None:
            query = query.where(s.c.source == source)
        wanted = None if fields is None else {(e.route, e.method, f) for e, f in fields}
        rows = self._run("read samples", lambda c: c.execute(query).all())
        seen: dict[tuple[str, str, str, str], int] = {}
        out: list[Sample] = []
        for r in rows:
            if wanted is not None and (r.route, r.method, r.field) not in wanted:
                continue
            k = (r.route, r.method, r.field, r.source)
            if seen.get(k, 0) >= limit:
                continue
            seen[k] = seen.get(k, 0) + 1
            out.append(
                Sample(
                    Endpoint(r.service, r.route, r.method),
                    r.field,
                    r.source,
                    float(r.ts),
                    r.request_id,
                    json.loads(r.payload),
                )
            )
        return out

    def sample_counts(self) -> dict[tuple[Endpoint, str, str], int]:
        self._ensure()
        s = sample_table
        query = sa.select(
            s.c.service, s.c.route, s.c.method, s.c.field, s.c.source, sa.func.count()
        ).group_by(s.c.service, s.c.route, s.c.method, s.c.field, s.c.source)
        rows = self._run("count samples", lambda c: c.execute(query).all())
        return {(Endpoint(r[0], r[1], r[2]), r[3], r[4]): int(r[5]) for r in rows}

    def services(self) -> list[str]:
        self._ensure()
        query = sa.select(tally_table.c.service).distinct().order_by(tally_table.c.service)
        return [r[0] for r in self._run("list services", lambda c: c.execute(query).all())]

    # -- retention -----------------------------------------------------------------

    def prune(self, *, now: float, max_age_s: float | None, max_samples: int) -> dict[str, int]:
        """Drop tallies and samples older than ``max_age_s`` and keep at most
        ``max_samples`` newest samples per (endpoint, field, source)."""
        self._ensure()
        t, s = tally_table, sample_table

        def run(conn: sa.Connection) -> dict[str, int]:
            removed = {"tallies": 0, "samples": 0}
            if max_age_s is not None:
                cutoff = now - max_age_s
                removed["tallies"] += conn.execute(
                    t.delete().where(t.c.bucket < int(cutoff) - int(cutoff) % 60)
                ).rowcount
                removed["samples"] += conn.execute(s.delete().where(s.c.ts < cutoff)).rowcount
            ranked = sa.select(
                s.c.id,
                sa.func.row_number()
                .over(
                    partition_by=(s.c.service, s.c.route, s.c.method, s.c.field, s.c.source),
                    order_by=(s.c.ts.desc(), s.c.id.desc()),
                )
                .label("n"),
            ).subquery()
            surplus = sa.select(ranked.c.id).where(ranked.c.n > max_samples)
            removed["samples"] += conn.execute(s.delete().where(s.c.id.in_(surplus))).rowcount
            return removed

        result: dict[str, int] = self._run("prune", run)
        return result


def _sample_row(s: Sample) -> dict[str, Any]:
    return {
        "service": s.endpoint.service,
        "route": s.endpoint.route,
        "method": s.endpoint.method,
        "field": s.field[:1000],
        "source": s.source,
        "ts": s.ts,
        "request_id": s.request_id[:200],
        "payload": json.dumps(s.payload, default=str),
    }


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
