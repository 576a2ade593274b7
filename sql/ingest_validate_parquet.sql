-- Typed validation of one events Parquet file (pipelines/slo/ingest.py, the typed fast path), straight
-- from the temp view `parquet_source` over read_parquet: _row (1-based row position), ts (TIMESTAMPTZ),
-- service, operation, event_id (VARCHAR), status_number, latency_number (DOUBLE), success (BOOLEAN), each
-- NULL when the file has no such column. Values are what the text validation (ingest_validate_events)
-- would read from the text forms of the same cells.
--
-- A row loads as it is only when it certainly passes every rule of ingest_validate_events; every other
-- row gets the reason 'deferred' and is validated again by the text rules themselves (on those rows
-- only), which give it its exact reason or load it. The rules, mirrored: a timestamp present, not in
-- the future ($latest_allowed), not before the raw retention cutoff's minute ($raw_cutoff); service
-- present and at most 200 characters, operation at most 200; status_code a whole number 100-599 when
-- given; status_code or success given; latency_ms finite, >= 0 and at most $max_latency_ms when given;
-- event_id at most 200 characters. Timestamps before 1970 are deferred too (the text form truncates
-- sub-microsecond digits, and only from 1970 on is that the same as DuckDB's cast).
-- Event ids are checked afterwards by sql/ingest_dedup_events.sql, as in the text path.
CREATE OR REPLACE TEMP TABLE validated AS
WITH
-- include: ingest_parquet_rules
SELECT
    _row,
    ts,
    service,
    operation,
    CASE WHEN accepted THEN CAST(status_number AS SMALLINT) END AS status_code,
    success,
    latency_number AS latency_ms,
    event_id,
    CASE WHEN NOT accepted THEN 'deferred' END AS reason
FROM checked;
