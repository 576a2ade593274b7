-- A file at the same path with new content replaces the old version's rows (a corrected export).
INSERT INTO dirty_ranges (start_minute, end_minute, file_id)
SELECT date_trunc('minute', min_ts), date_trunc('minute', max_ts) + INTERVAL 1 MINUTE, file_id
FROM ingested_files
WHERE path = $path AND status = 'loaded' AND min_ts IS NOT NULL;
DELETE FROM raw_events WHERE file_id IN (SELECT file_id FROM ingested_files WHERE path = $path AND status = 'loaded');
DELETE FROM raw_counts WHERE file_id IN (SELECT file_id FROM ingested_files WHERE path = $path AND status = 'loaded');
DELETE FROM raw_ratios WHERE file_id IN (SELECT file_id FROM ingested_files WHERE path = $path AND status = 'loaded');
UPDATE ingested_files SET status = 'superseded' WHERE path = $path AND status = 'loaded';
