INSERT INTO ingested_files (file_id, path, sha256, format, schema_kind, status, rows_read, rows_loaded,
                            rows_quarantined, min_ts, max_ts, error, ingested_at)
VALUES ($file_id, $path, $sha256, $format, $schema_kind, $status, $rows_read, $rows_loaded,
        $rows_quarantined, $min_ts, $max_ts, $error, $now);
