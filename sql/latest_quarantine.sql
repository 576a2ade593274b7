SELECT path, source_row, reason
FROM quarantine
ORDER BY quarantined_at DESC, file_id, source_row
LIMIT 10;
