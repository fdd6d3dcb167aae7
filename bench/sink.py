"""Sink throughput: Debezium events/s applied into SQLite and PostgreSQL, batched.

    python -m bench sink [--events 100000] [--batch 2000] [--pg-url URL]

The events are real JsonConverter records (schema + payload) for the monolith's
``notifications_notification`` table, made by the CDC source's own encoder: 80% creates,
20% updates of earlier rows. For each database the run measures

* ``sink``: the whole sink path as the consumer runs it — parse JSON, plan (decode, map,
  coerce), collapse, check stored row positions (SQLite: a SELECT; PostgreSQL: inside the
  position upsert), upsert rows + positions + offsets, one transaction per batch; on
  PostgreSQL each batch is applied on the pipeline's worker thread while the next one is
  planned (``sink_mode``: ``pipelined`` on PostgreSQL, ``serial`` on SQLite, as the
  consumer chooses by ``SqlAlchemyApplier.overlaps_commit``);
* ``serial_*`` / ``pipelined_*``: both modes, for comparison in the same run;
* ``reference``: the floor on the same machine and database — the already-decoded final
  rows written with one SQLAlchemy Core ``executemany`` INSERT per batch, no positions,
  no offsets, no JSON.

Also reported: planning alone (pure, no database), and CPU µs per event of this process
(``sink_cpu_us_per_event``, all threads) and, for the throwaway server, of PostgreSQL
(``server_cpu_us_per_event``) — less sensitive to a busy machine than events/s. Without
``--pg-url`` a throwaway PostgreSQL 15 is started (as the test suite does). Prints JSON
with the ratios and writes it to ``docs/sink_bench_latest.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from cdc.converter import JsonConverter
from cdc.events import Change, Connector, Op, records_for
from cdc.positions import SourcePosition
from cdc.sinks.pipeline import ApplyPipeline
from cdc.sinks.planner import PlannedWrite, Skip, Upsert, plan_event
from cdc.sinks.sqlalchemy_applier import ApplyResult, Consumed, engine_url
from extracted.notifications.migrate import upgrade
from extracted.notifications.models import Notification
from extracted.notifications.sink import notifications_applier

if TYPE_CHECKING:
    from tests.support.postgres import PostgresServer

TOPIC_PREFIX = "bench"


def make_events(count: int) -> list[tuple[bytes | None, bytes | None]]:
    from tests.sinks.encode import NOTIFICATION, _convert, notification_row

    connector = Connector("postgresql", name=TOPIC_PREFIX, db="shop")
    converter = JsonConverter(schemas_enable=True)
    out: list[tuple[bytes | None, bytes | None]] = []
    created = 0
    for n in range(count):
        lsn = 1_000_000 + n * 16
        if n % 5 == 4 and created:
            i = (n * 7919) % created + 1
            op, row = Op.UPDATE, notification_row(i, f"updated {n}", status="failed")
        else:
            created += 1
            op, row = Op.CREATE, notification_row(created, f"subject {n}")
        change = Change(op, NOTIFICATION, None, _convert(NOTIFICATION, row),
                        SourcePosition(lsn + 8, lsn), ts_us=1_700_000_000_000_000 + n,
                        tx_id=n, lsn=lsn)
        [record] = records_for(connector, change, now_ns=1_700_000_000_000_000_000)
        out.append(converter.serialize(record))
    return out


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _timed_cpu(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall seconds and CPU seconds of this process (all its threads) spent in ``fn``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _fresh(url: str) -> sa.Engine:
    upgrade(url)
    return sa.create_engine(engine_url(url))


@dataclass(frozen=True)
class SinkRun:
    seconds: float
    cpu_s: float  # this process, all threads
    server_cpu_s: float | None  # the PostgreSQL server's processes, when it is ours


def run_sink(url: str, events: list[tuple[bytes | None, bytes | None]], batch: int, *,
             pipelined: bool = True,
             server_cpu: Callable[[], float] | None = None) -> SinkRun:
    engine = _fresh(url)
    applier = notifications_applier(engine)
    topic = f"{TOPIC_PREFIX}.public.notifications_notification"

    def go() -> None:
        pipeline: ApplyPipeline[ApplyResult] = ApplyPipeline()
        try:
            for start in range(0, len(events), batch):
                writes: list[PlannedWrite] = []
                consumed = []
                for offset, (key, value) in enumerate(events[start:start + batch], start):
                    write = plan_event(applier.mapping, value, key=key, topic=topic)
                    assert not isinstance(write, Skip)
                    writes.append(write)
                    consumed.append(Consumed(topic, 0, offset, write.position,
                                             write.source_ts_ms))
                if pipelined:
                    pipeline.submit(partial(applier.apply, writes, consumed))
                else:
                    applier.apply(writes, consumed)
            pipeline.collect()
        finally:
            pipeline.close()

    server_before = server_cpu() if server_cpu else 0.0
    seconds, cpu = _timed_cpu(go)
    server_s = server_cpu() - server_before if server_cpu else None
    with engine.connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(Notification)).scalar_one()
    engine.dispose()
    assert rows == sum(1 for n in range(len(events)) if not (n % 5 == 4 and n)), rows
    return SinkRun(seconds, cpu, server_s)


def postgres_cpu(datadir: Path) -> Callable[[], float]:
    """CPU seconds used so far by a local PostgreSQL server: the postmaster, its reaped
    children and its live ones (backends, walwriter, ...), from ``/proc``."""
    tick = os.sysconf("SC_CLK_TCK")
    postmaster = int((datadir / "postmaster.pid").read_text().split()[0])

    def fields(pid: int | str) -> list[str] | None:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        return text[text.rindex(")") + 2:].split()  # from field 3 (state) on

    def total() -> float:
        ticks = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            f = fields(entry)
            if f is None:
                continue
            if int(entry) == postmaster:
                ticks += sum(int(x) for x in f[11:15])  # utime stime cutime cstime
            elif int(f[1]) == postmaster:
                ticks += int(f[11]) + int(f[12])
        return ticks / tick

    return total


def run_reference(url: str, rows_by_batch: list[list[dict[str, Any]]]) -> float:
    engine = _fresh(url)
    table = Notification.__table__

    def go() -> None:
        for rows in rows_by_batch:
            with engine.begin() as conn:
                conn.execute(sa.insert(table), rows)

    seconds = _timed(go)
    engine.dispose()
    return seconds


def final_rows(events: list[tuple[bytes | None, bytes | None]], batch: int,
               url: str) -> list[list[dict[str, Any]]]:
    """The rows the sink ends up writing, one list per batch (creates only: inserts)."""
    engine = _fresh(url)
    mapping = notifications_applier(engine).mapping
    engine.dispose()
    out: list[list[dict[str, Any]]] = []
    seen: set[int] = set()
    for start in range(0, len(events), batch):
        rows = []
        for _key, value in events[start:start + batch]:
            write = plan_event(mapping, value)
            if isinstance(write, Upsert) and write.key[0] not in seen:
                seen.add(write.key[0])
                rows.append(dict(write.row))
        out.append(rows)
    return out


def _machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "sqlalchemy": sa.__version__}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sink")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--pg-url", help="an empty PostgreSQL database (default: start one)")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).parent.parent / "docs"
                                             / "sink_bench_latest.json"),
                        help="also write the JSON here ('' to skip)")
    args = parser.parse_args(argv)

    events = make_events(args.events)
    result: dict[str, Any] = {"bench": "sink", "machine": _machine(),
                              "config": {"events": args.events, "batch": args.batch,
                                         "mix": "80% create, 20% update",
                                         "format": "JsonConverter schema+payload"}}
    with tempfile.TemporaryDirectory() as tmp:
        plan_mapping_url = f"sqlite:///{Path(tmp) / 'mapping.sqlite3'}"
        engine = _fresh(plan_mapping_url)
        mapping = notifications_applier(engine).mapping
        engine.dispose()
        plan_s = _timed(lambda: [plan_event(mapping, v) for _k, v in events])
        result["plan_only_events_per_s"] = round(args.events / plan_s)
        rows = final_rows(events, args.batch, plan_mapping_url)

        targets: dict[str, Callable[[str], str]] = {
            "sqlite": lambda name: f"sqlite:///{Path(tmp) / name}.sqlite3"}
        server: PostgresServer | None = None
        if not args.skip_pg:
            if args.pg_url:
                targets["postgresql"] = lambda _name: args.pg_url
            else:
                from tests.support.postgres import start_server

                server = start_server()
                targets["postgresql"] = server.create_database
        try:
            for backend, url_for in targets.items():
                cpu_of_server = (postgres_cpu(server.datadir)
                                 if backend == "postgresql" and server is not None else None)
                runs = {}
                for mode, pipelined in (("serial", False), ("pipelined", True)):
                    runs[mode] = run_sink(url_for(f"sink_{mode}"), events, args.batch,
                                          pipelined=pipelined, server_cpu=cpu_of_server)
                    if args.pg_url and backend == "postgresql":
                        _drop(args.pg_url)
                ref_s = run_reference(url_for("reference"), rows)
                ref_eps = sum(len(r) for r in rows) / ref_s
                mode = "pipelined" if backend == "postgresql" else "serial"
                sink = runs[mode]
                sink_eps = args.events / sink.seconds
                result[backend] = {
                    "sink_mode": mode,  # what the consumer does on this database
                    "sink_events_per_s": round(sink_eps),
                    "sink_cpu_us_per_event": _per_event(sink.cpu_s, args.events),
                    "server_cpu_us_per_event": _per_event(sink.server_cpu_s, args.events),
                    **{f"{m}_{k}": v for m, r in runs.items() for k, v in (
                        ("events_per_s", round(args.events / r.seconds)),
                        ("cpu_us_per_event", _per_event(r.cpu_s, args.events)),
                        ("server_cpu_us_per_event", _per_event(r.server_cpu_s, args.events)))
                       if r.server_cpu_s is not None or k != "server_cpu_us_per_event"},
                    "reference_rows_per_s": round(ref_eps),
                    "ratio_sink_to_reference": round(sink_eps / ref_eps, 3),
                    "goal_events_per_s": 20_000,
                    "meets_goal": sink_eps >= 20_000,
                }
        finally:
            if server is not None:
                from tests.support.postgres import stop_server

                stop_server(server)
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


def _per_event(seconds: float | None, events: int) -> float | None:
    return None if seconds is None else round(seconds / events * 1e6, 1)


def _drop(url: str) -> None:
    """Empty the ``--pg-url`` database again: the service's tables and Alembic's."""
    from extracted.notifications.models import Base

    engine = sa.create_engine(engine_url(url))
    Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
