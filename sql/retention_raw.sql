-- Retention, raw tier: rows recorded before $cutoff (a whole UTC day, already lowered below any minute
-- not yet aggregated). Idempotent. ingested_files and counter_state are never touched: the first keeps
-- re-landed files from loading twice, the second carries cumulative counters across files.
DELETE FROM raw_events WHERE ts < $cutoff;
DELETE FROM raw_counts WHERE ts < $cutoff;
DELETE FROM raw_ratios WHERE ts < $cutoff;
