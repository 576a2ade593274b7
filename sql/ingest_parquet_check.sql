-- The typed Parquet fast path's first pass over a file with several row groups (pipelines/slo/ingest.py,
-- _validate_typed_parquet): whether sql/ingest_validate_parquet.sql would accept every row, without
-- materialising `validated`. When it would (no row rejected, no event id: nothing for the text rules or
-- sql/ingest_dedup_events.sql to do), sql/ingest_load_parquet.sql inserts straight from the file.
-- The rules are those of sql/ingest_validate_parquet.sql: the same file, sql/ingest_parquet_rules.sql.
WITH
-- include: ingest_parquet_rules
SELECT
    count(*) FILTER (WHERE NOT accepted OR event_id IS NOT NULL) AS not_direct,
    count(*) AS rows_read,
    min(ts) AS min_ts,
    max(ts) AS max_ts
FROM checked;
