"""PostgreSQL → Kafka capture speed and latency.

    python -m bench cdc_pg [--rows 100000] [--latency-seconds 10] [--rate 1000]
                           [--out docs/cdc_pg_bench_latest.json]

Against a throwaway PostgreSQL 15 (or ``--database-url``) and the embedded broker:

* ``single``: 100k single-row transactions; ``bulk``: one 100k-row transaction.
  WAL is written first, with two slots already waiting at the same point:
  - ``receive_only`` (reference): reads the slot over the same pgoutput replication
    protocol and acknowledges, without decoding a byte;
  - ``end_to_end``: ``cdc.runner.PgCapture`` — decode, Debezium JSON with schemas,
    produce to Kafka (idempotent, acks=all), wait for confirmations, ack the slot.
  Both counted until the slot is acknowledged past the workload's last commit. The bulk
  case also runs without schemas and with the hot path off (``general_path``: every
  change through decode → Change → records → JsonConverter, as before the hot path).
* ``latency``: writes at ``--rate`` single-row transactions/s while the capture runs;
  commit (server commit timestamp) → Kafka confirmation, p50/p99.

Prints JSON with the ratios and writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import statistics
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras

from cdc.config import CdcConfig, pg_dsn
from cdc.embedded_broker import EmbeddedBroker
from cdc.events import Change
from cdc.kafka import ensure_topics
from cdc.offsets import MemoryOffsetStore
from cdc.runner import PgCapture

TABLE = """CREATE TABLE bench_orders (
    id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(10,2) NOT NULL,
    created timestamptz NOT NULL DEFAULT now(), note text)"""
INSERT_COLS = "customer, amount, note"
ROW = "'customer ' || i, (i % 1000) / 10.0, 'note'"


def _sql(url: str, *stmts: str) -> list[Any]:
    conn = psycopg2.connect(pg_dsn(url))
    conn.autocommit = True
    out: list[Any] = []
    with conn.cursor() as cur:
        for stmt in stmts:
            cur.execute(stmt)
            if cur.description:
                out.append(cur.fetchall())
    conn.close()
    return out


def _fresh_table(url: str) -> None:
    _sql(url, "DROP TABLE IF EXISTS bench_orders", TABLE, "DROP PUBLICATION IF EXISTS bench_pub",
         "CREATE PUBLICATION bench_pub FOR TABLE bench_orders")


def receive_only(url: str, slot: str, publication: str, rows: int) -> tuple[float, int]:
    """Read the slot until ``rows`` inserts and the commit after them arrived; no decoding
    beyond the first byte (the message type)."""
    conn = psycopg2.connect(pg_dsn(url),
                            connection_factory=psycopg2.extras.LogicalReplicationConnection)
    cur = conn.cursor()
    t0 = time.perf_counter()
    cur.start_replication(slot_name=slot, decode=False,
                          options={"proto_version": "1", "publication_names": publication})
    messages = inserts = 0
    while True:
        msg = cur.read_message()
        if msg is None:
            select.select([conn], [], [], 0.1)
            continue
        messages += 1
        kind = msg.payload[:1]
        if kind == b"I":
            inserts += 1
        elif kind == b"C":
            cur.send_feedback(flush_lsn=msg.data_start)
            if inserts >= rows:
                cur.send_feedback(flush_lsn=msg.data_start, force=True)
                break
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed, messages


def end_to_end(url: str, bootstrap: str, slot: str, publication: str, prefix: str,
               rows: int, state: Path, hook: Any = None,
               schemas: bool = True, fast_path: bool = True) -> tuple[float, PgCapture]:
    """Run the capture until ``rows`` records are confirmed and their slot acknowledged."""
    cfg = CdcConfig(database_url=url, bootstrap_servers=bootstrap, topic_prefix=prefix,
                    tables=("public.bench_orders",), slot=slot, publication=publication,
                    snapshot_mode="no_data", state_dir=state, http_port=0,
                    schemas_enable=schemas)
    capture = PgCapture(cfg, offsets=MemoryOffsetStore(), serve_http=False, delivery_hook=hook,
                        fast_path=fast_path)
    t0 = time.perf_counter()
    thread = threading.Thread(target=capture.run, daemon=True)
    thread.start()
    elapsed = 0.0
    while thread.is_alive():
        publisher = capture._publisher
        if (publisher is not None and publisher.delivered >= rows
                and capture._tracker.in_flight == 0):
            elapsed = time.perf_counter() - t0
            break
        time.sleep(0.002)
    capture.stop()
    thread.join(60)
    if not elapsed:
        raise SystemExit(f"capture stopped early: {capture.status().get('error')}")
    return elapsed, capture


def _slots(url: str, names: list[str]) -> None:
    for name in names:
        _sql(url, f"SELECT pg_create_logical_replication_slot('{name}', 'pgoutput')")


def throughput(url: str, bootstrap: str, workload: str, rows: int, tmp: Path,
               schemas: bool = True, fast_path: bool = True) -> dict[str, Any]:
    _fresh_table(url)
    tag = uuid.uuid4().hex[:6]
    recv_slot, e2e_slot, prefix = f"recv_{tag}", f"e2e_{tag}", f"bench{tag}"
    ensure_topics(bootstrap, [f"{prefix}.public.bench_orders", f"__debezium-heartbeat.{prefix}"])
    _slots(url, [recv_slot, e2e_slot])
    t0 = time.perf_counter()
    if workload == "single":
        _sql(url, f"DO $$ BEGIN FOR i IN 1..{rows} LOOP INSERT INTO bench_orders "
                  f"(id, {INSERT_COLS}) SELECT i, {ROW}; COMMIT; END LOOP; END $$")
    else:
        _sql(url, f"INSERT INTO bench_orders (id, {INSERT_COLS}) SELECT i, {ROW} "
                  f"FROM generate_series(1, {rows}) i")
    write_s = time.perf_counter() - t0
    cpu0 = time.process_time()
    recv_s, messages = receive_only(url, recv_slot, "bench_pub", rows)
    cpu1 = time.process_time()
    e2e_s, capture = end_to_end(url, bootstrap, e2e_slot, "bench_pub", prefix, rows, tmp,
                                schemas=schemas, fast_path=fast_path)
    cpu2 = time.process_time()
    delivered = capture._publisher.delivered if capture._publisher else 0
    _sql(url, f"SELECT pg_drop_replication_slot('{recv_slot}')",
         f"SELECT pg_drop_replication_slot('{e2e_slot}')")
    return {
        "rows": rows,
        "schemas": schemas,
        "hot_path": fast_path,
        "write_seconds": round(write_s, 2),
        "receive_only": {"seconds": round(recv_s, 3), "messages": messages,
                         "rows_per_s": round(rows / recv_s),
                         "cpu_us_per_row": round((cpu1 - cpu0) / rows * 1e6, 1)},
        "end_to_end": {"seconds": round(e2e_s, 3), "records_confirmed": delivered,
                       "events_per_s": round(rows / e2e_s),
                       "cpu_us_per_event": round((cpu2 - cpu1) / rows * 1e6, 1),
                       "events_per_cpu_second": round(rows / max(cpu2 - cpu1, 1e-9))},
        "ratio_end_to_end_vs_receive_only": round(recv_s / e2e_s, 3),
    }


def latency(url: str, bootstrap: str, rate: int, seconds: float, tmp: Path) -> dict[str, Any]:
    _fresh_table(url)
    tag = uuid.uuid4().hex[:6]
    slot, prefix = f"lat_{tag}", f"lat{tag}"
    ensure_topics(bootstrap, [f"{prefix}.public.bench_orders", f"__debezium-heartbeat.{prefix}"])
    _slots(url, [slot])
    samples: list[float] = []

    def hook(change: Change) -> None:
        samples.append(time.time() - change.ts_us / 1e6)

    count = int(rate * seconds)

    def writer() -> None:
        time.sleep(1.0)
        conn = psycopg2.connect(pg_dsn(url))
        conn.autocommit = True
        start = time.perf_counter()
        with conn.cursor() as cur:
            # the throwaway server runs synchronous_commit=off; WAL would then reach the
            # walsender only at the WAL writer's next flush (200 ms), which is not CDC latency
            cur.execute("SET synchronous_commit = on")
            for i in range(1, count + 1):
                cur.execute(f"INSERT INTO bench_orders (id, {INSERT_COLS}) "
                            "VALUES (%s, 'c', 1.5, 'n')", (i,))
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
        conn.close()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    end_to_end(url, bootstrap, slot, "bench_pub", prefix, count, tmp, hook=hook)
    thread.join()
    _sql(url, f"SELECT pg_drop_replication_slot('{slot}')")
    ms = sorted(s * 1000 for s in samples)
    return {
        "writes": count, "target_rate_per_s": rate, "samples": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 2),
        "max_ms": round(ms[-1], 2),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench cdc_pg")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent.parent / "docs"
                        / "cdc_pg_bench_latest.json")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    server = None
    if args.database_url:
        url = args.database_url
    else:
        from tests.support.postgres import start_server

        server = start_server()
        url = server.create_database("bench_cdc")
    import tempfile

    try:
        with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
            bootstrap = broker.bootstrap_servers
            single = throughput(url, bootstrap, "single", args.rows, Path(tmp))
            bulk = throughput(url, bootstrap, "bulk", args.rows, Path(tmp))
            bulk_bare = throughput(url, bootstrap, "bulk", args.rows, Path(tmp), schemas=False)
            bulk_general = throughput(url, bootstrap, "bulk", args.rows, Path(tmp),
                                      fast_path=False)
            lat = latency(url, bootstrap, args.rate, args.latency_seconds, Path(tmp))
    finally:
        if server is not None:
            from tests.support.postgres import stop_server

            stop_server(server)
    result = {
        "bench": "cdc_pg",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform(), "loadavg_at_start": load,
                    "loadavg_at_end": os.getloadavg()},
        "single_row_transactions": single,
        "one_bulk_transaction": bulk,
        "one_bulk_transaction_without_schemas": bulk_bare,
        "one_bulk_transaction_general_path": bulk_general,
        "latency_commit_to_kafka_ack": lat,
        "goals": {
            "single_ratio_ge_0.5": single["ratio_end_to_end_vs_receive_only"] >= 0.5,
            "bulk_ratio_ge_0.5": bulk["ratio_end_to_end_vs_receive_only"] >= 0.5,
            "bulk_ge_40k_events_per_s": bulk["end_to_end"]["events_per_s"] >= 40_000,
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    args.out.write_text(text + "\n")
    return 0
