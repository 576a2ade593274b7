-- Per-minute sums of many filters in one pass over the minute tables: the batched form of
-- objective_counts.sql for the SLOs evaluated from per-minute arrays (corrections, time slices,
-- percentiles), so the minute tables are scanned once for all of them rather than twice per SLO.
-- batch_filters as in objective_window_sums.sql; window_start holds each entry's lookback start, and
-- only minutes in [window_start, $as_of) are returned. The filter arithmetic (the CTEs filters,
-- contributions, matched) is objective_batch_matched.sql, shared with objective_window_sums.sql
-- (tests/test_eval_scale.py compares both paths).
WITH counts AS (
    SELECT bucket_start, service, operation, status_code, success, requests, latency_count
    FROM sli_counts_minute
    WHERE bucket_start >= $lo AND bucket_start < $as_of
),
thresholds AS (
    SELECT bucket_start, service, operation, status_code, success, threshold_ms, le_count, lt_count
    FROM sli_threshold_minute
    WHERE bucket_start >= $lo AND bucket_start < $as_of
),
-- include: objective_batch_matched
SELECT entry_id, bucket_start, sum(n)::BIGINT AS n
FROM matched
WHERE bucket_start >= window_start
GROUP BY entry_id, bucket_start;
