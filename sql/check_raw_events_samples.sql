-- The first $limit raw events that break a rule of check_raw_events.sql, with the file and row they came
-- from (source_row as the ingestion report numbers it) so an operator can find and fix them.
SELECT coalesce(f.path, '(file id ' || e.file_id || ')') AS file, e.source_row, e.ts, e.service, e.operation,
       e.status_code, e.latency_ms, e.problem
FROM (
    SELECT *,
           concat_ws('; ',
               CASE WHEN ts IS NULL THEN 'timestamp missing' END,
               CASE WHEN ts > $latest_allowed THEN 'timestamp in the future' END,
               CASE WHEN service IS NULL OR service = '' THEN 'service missing' END,
               CASE WHEN latency_ms < 0 OR NOT isfinite(latency_ms) THEN 'latency negative or not finite' END,
               CASE WHEN latency_ms > $max_latency_ms THEN 'latency above ' || $max_latency_ms || ' ms' END,
               CASE WHEN status_code NOT BETWEEN 100 AND 599 THEN 'status outside 100-599' END,
               CASE WHEN status_code IS NULL AND success IS NULL THEN 'neither status nor success' END
           ) AS problem
    FROM raw_events
) e
LEFT JOIN ingested_files f ON f.file_id = e.file_id
WHERE e.problem <> ''
ORDER BY e.file_id, e.source_row
LIMIT $limit;
