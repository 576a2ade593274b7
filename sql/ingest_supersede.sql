-- A file at the same path with new content replaces the old version's rows (a corrected export).
-- Its minutes are recomputed, except those before the raw retention cutoff ($raw_cutoff, NULL when none):
-- their raw rows are gone, so recomputing them would replace their aggregates with nothing. They keep the
-- old version's counts (the new version's rows there are quarantined by validation).
INSERT INTO dirty_ranges (start_minute, end_minute, file_id)
SELECT greatest(date_trunc('minute', min_ts),
                coalesce(sloscope_minute_ceil(CAST($raw_cutoff AS TIMESTAMP)), date_trunc('minute', min_ts))),
       date_trunc('minute', max_ts) + INTERVAL 1 MINUTE,
       file_id
FROM ingested_files
WHERE path = $path AND status = 'loaded' AND min_ts IS NOT NULL
  AND date_trunc('minute', max_ts) + INTERVAL 1 MINUTE
      > coalesce(sloscope_minute_ceil(CAST($raw_cutoff AS TIMESTAMP)), date_trunc('minute', min_ts));
DELETE FROM raw_events WHERE file_id IN (SELECT file_id FROM ingested_files WHERE path = $path AND status = 'loaded');
DELETE FROM raw_counts WHERE file_id IN (SELECT file_id FROM ingested_files WHERE path = $path AND status = 'loaded');
DELETE FROM raw_ratios WHERE file_id IN (SELECT file_id FROM ingested_files WHERE path = $path AND status = 'loaded');
UPDATE ingested_files SET status = 'superseded' WHERE path = $path AND status = 'loaded';
