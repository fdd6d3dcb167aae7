"""PostgreSQL source: pgoutput logical replication (decode, stream) and snapshots."""
