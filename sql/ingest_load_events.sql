INSERT INTO raw_events (ts, service, operation, status_code, success, latency_ms, file_id, source_row, event_id)
SELECT ts, service, operation, status_code, success, latency_ms, $file_id, _row, event_id
FROM validated
WHERE reason IS NULL;
