-- The oldest raw row before $cutoff whose minute has no aggregate row of its service and operation.
-- A second line of defence behind dirty_ranges: such a row was never aggregated, so it must be kept.
-- Every raw row yields a minute row (counts rows even at zero traffic), so a miss means "not aggregated".
SELECT min(ts) FROM (
    SELECT r.ts FROM raw_events r
    ANTI JOIN sli_counts_minute m
        ON m.bucket_start = date_trunc('minute', r.ts) AND m.service = r.service AND m.operation = r.operation
    WHERE r.ts < $cutoff
    UNION ALL
    SELECT r.ts FROM raw_counts r
    ANTI JOIN sli_counts_minute m
        ON m.bucket_start = date_trunc('minute', r.ts) AND m.service = r.service AND m.operation = r.operation
    WHERE r.ts < $cutoff
    UNION ALL
    SELECT r.ts FROM raw_ratios r
    ANTI JOIN sli_ratio_minute m
        ON m.bucket_start = date_trunc('minute', r.ts) AND m.service = r.service AND m.operation = r.operation
    WHERE r.ts < $cutoff
);
