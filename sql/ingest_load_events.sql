INSERT INTO raw_events (ts, service, operation, status_code, success, latency_ms, file_id, source_row)
SELECT ts, service, operation, status_code, success, latency_ms, $file_id, _row
FROM validated
WHERE reason IS NULL;
