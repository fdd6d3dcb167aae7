"""``python -m extracted.notifications migrate|serve|sink|capture``."""

from __future__ import annotations

import argparse
import logging
import sys

from strangler_proxy import jsonlog

log = logging.getLogger("extracted.notifications")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extracted.notifications")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="alembic upgrade head on NOTIFICATIONS_DATABASE_URL")
    serve = sub.add_parser("serve", help="serve the API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8101)
    serve.add_argument("--no-migrate", action="store_true", help="do not migrate first")
    sink = sub.add_parser("sink", help="consume the monolith's CDC topics into this database")
    sink.add_argument("--bootstrap-servers", required=True)
    sink.add_argument("--topic-prefix", default="shop")
    sink.add_argument("--schema", default="public")
    sink.add_argument("--metrics-port", type=int, default=0,
                      help="serve /healthz and /metrics on this port (0: off)")
    sink.add_argument("--plan", default=None, help="take data.tables from this plan")
    sink.add_argument("--batch-size", type=int, default=1000)
    sink.add_argument("--no-migrate", action="store_true", help="do not migrate first")
    sink.add_argument("--from-beginning", action="store_true",
                      help="read the topics from their start (a fresh memory-only broker)")
    capture = sub.add_parser("capture", help="relay this database's changes to the tables "
                             "it owns (plan: data.owned) to Kafka, for the monolith")
    capture.add_argument("--plan", required=True)
    capture.add_argument("--bootstrap-servers", required=True)
    capture.add_argument("--http-port", type=int, default=0,
                         help="serve /healthz, /metrics, /status on this port (0: any)")
    capture.add_argument("--state-dir", default="var/cdc-notifications",
                         help="offsets and status.json")
    args = parser.parse_args(argv)

    jsonlog.configure("notifications")
    from extracted.notifications.config import Settings
    from extracted.notifications.migrate import upgrade

    settings = Settings.from_env()
    if args.command == "migrate":
        upgrade(settings.database_url)
        log.info("migrated", extra={"database": settings.database_url.split("@")[-1]})
        return 0
    if args.command == "serve":
        import uvicorn

        from extracted.notifications.app import create_app

        if not args.no_migrate:
            upgrade(settings.database_url)
        uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None,
                    access_log=False)
        return 0
    if args.command == "capture":
        from pathlib import Path

        from extracted.notifications.capture import run_capture

        return run_capture(args.plan, database_url=settings.database_url,
                           bootstrap_servers=args.bootstrap_servers, http_port=args.http_port,
                           state_dir=Path(args.state_dir))
    from extracted.notifications.sink import run_sink

    if not args.no_migrate:
        upgrade(settings.database_url)
    return run_sink(settings, bootstrap_servers=args.bootstrap_servers,
                    topic_prefix=args.topic_prefix, schema=args.schema,
                    metrics_port=args.metrics_port, plan_path=args.plan,
                    batch_size=args.batch_size, from_beginning=args.from_beginning)


if __name__ == "__main__":
    sys.exit(main())
