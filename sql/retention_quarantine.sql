-- Retention, quarantined records: by when they were quarantined (a rejected record may carry no usable
-- timestamp). ingested_files keeps the per-file counts, so the quarantine share check is unaffected.
DELETE FROM quarantine WHERE quarantined_at < $cutoff;
