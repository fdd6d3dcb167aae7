"""The SQLite source: triggers write a changelog, a relay publishes it as Debezium events.

triggers.py   changelog schema + trigger SQL (pure), install/uninstall/verify
txids.py      one transaction id per transaction (counter bumped by the connection wrapper)
render.py     changelog values → the values PostgreSQL holds for the same Django field
tables.py     captured tables → :class:`cdc.events.Table` with PostgreSQL's column types
"""
