SELECT coalesce(sum(rows_read), 0), coalesce(sum(rows_quarantined), 0)
FROM ingested_files WHERE status = 'loaded';
