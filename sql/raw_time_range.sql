-- The minute range covered by raw data: [first minute, last minute + 1).
SELECT min(lo), max(hi) FROM (
    SELECT date_trunc('minute', min(ts)) AS lo, date_trunc('minute', max(ts)) + INTERVAL 1 MINUTE AS hi FROM raw_events
    UNION ALL
    SELECT date_trunc('minute', min(ts)), date_trunc('minute', max(ts)) + INTERVAL 1 MINUTE FROM raw_counts
    UNION ALL
    SELECT date_trunc('minute', min(ts)), date_trunc('minute', max(ts)) + INTERVAL 1 MINUTE FROM raw_ratios
);
