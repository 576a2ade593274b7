-- Makes room for the text validation of the typed fast path's deferred rows (sql/ingest_parquet_merge.sql).
ALTER TABLE validated RENAME TO validated_typed;
