-- The typed Parquet fast path: the deferred rows of `validated_typed` (sql/ingest_validate_parquet.sql)
-- take the columns and reason the text rules gave them in `validated` (sql/ingest_validate_events.sql,
-- run on those rows only); the merged table becomes `validated` again.
UPDATE validated_typed
SET ts = v.ts, service = v.service, operation = v.operation, status_code = v.status_code,
    success = v.success, latency_ms = v.latency_ms, event_id = v.event_id, reason = v.reason
FROM validated v
WHERE validated_typed._row = v._row;
DROP TABLE validated;
ALTER TABLE validated_typed RENAME TO validated;
