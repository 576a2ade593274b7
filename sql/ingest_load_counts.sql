INSERT INTO raw_counts (ts, service, operation, total, good, file_id, source_row)
SELECT ts, service, operation, total, good, $file_id, _row
FROM validated
WHERE reason IS NULL;
