-- The typed Parquet fast path's direct load (see sql/ingest_parquet_check.sql): the rows of
-- `parquet_source` into raw_events with the values sql/ingest_validate_parquet.sql and
-- sql/ingest_load_events.sql would store, without the temp table between them. Only accepted rows
-- without an event id are inserted: the caller compares the count with the file's rows, so a file that
-- changed since the check fails instead of loading rows nobody validated.
-- The rules are those of sql/ingest_validate_parquet.sql: the same file, sql/ingest_parquet_rules.sql.
INSERT INTO raw_events (ts, service, operation, status_code, success, latency_ms, file_id, source_row, event_id)
WITH
-- include: ingest_parquet_rules
SELECT ts, service, operation, CAST(status_number AS SMALLINT), success, latency_number, $file_id, _row, event_id
FROM checked
WHERE accepted AND event_id IS NULL;
