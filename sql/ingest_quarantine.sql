INSERT INTO quarantine (file_id, path, source_row, reason, record, quarantined_at)
SELECT $file_id, $path, v._row, v.reason, r._record, $now
FROM validated v
JOIN rejected_records r ON r._row = v._row
WHERE v.reason IS NOT NULL;
