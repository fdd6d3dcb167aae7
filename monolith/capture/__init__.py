"""Change capture for the SQLite database: installs the triggers of
:mod:`cdc.sources.sqlite` for the plan's captured tables, keeps them installed across
migrations and gives every write transaction its own transaction id.

A no-op on PostgreSQL, where logical decoding reads the database log instead.
"""
