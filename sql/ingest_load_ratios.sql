INSERT INTO raw_ratios (ts, service, operation, ratio, file_id, source_row)
SELECT ts, service, operation, ratio, $file_id, _row
FROM validated
WHERE reason IS NULL;
