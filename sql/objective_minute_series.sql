-- Per-minute sums of many filters in one pass over the minute tables: the batched form of
-- objective_counts.sql for the SLOs evaluated from per-minute arrays (corrections, time slices,
-- percentiles), so the minute tables are scanned once for all of them rather than twice per SLO.
-- batch_filters as in objective_window_sums.sql; window_start holds each entry's lookback start, and
-- only minutes in [window_start, $as_of) are returned. The filter arithmetic is that of
-- objective_window_sums.sql (keep the two in step; tests/test_eval_scale.py compares both paths).
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
filters AS (
    SELECT * FROM batch_filters WHERE NOT matches_nothing
),
contributions AS (
    SELECT f.entry_id, f.window_start, g.bucket_start,
           CASE WHEN f.has_upper THEN 0 WHEN f.has_lower THEN g.latency_count ELSE g.requests END AS n,
           g.operation, g.status_code, g.success, f.operations_in, f.operations_not_in, f.status_in,
           f.status_not_in, f.status_min, f.status_max, f.success AS want_success
    FROM counts g JOIN filters f ON f.service = g.service
    UNION ALL
    SELECT f.entry_id, f.window_start, g.bucket_start,
           CASE WHEN f.upper_inclusive THEN g.le_count ELSE g.lt_count END,
           g.operation, g.status_code, g.success, f.operations_in, f.operations_not_in, f.status_in,
           f.status_not_in, f.status_min, f.status_max, f.success
    FROM thresholds g JOIN filters f ON f.service = g.service AND f.has_upper AND g.threshold_ms = f.upper
    UNION ALL
    SELECT f.entry_id, f.window_start, g.bucket_start,
           -(CASE WHEN f.lower_inclusive THEN g.lt_count ELSE g.le_count END),
           g.operation, g.status_code, g.success, f.operations_in, f.operations_not_in, f.status_in,
           f.status_not_in, f.status_min, f.status_max, f.success
    FROM thresholds g JOIN filters f ON f.service = g.service AND f.has_lower AND g.threshold_ms = f.lower
),
matched AS (
    SELECT entry_id, window_start, bucket_start, n
    FROM contributions
    WHERE (operations_in IS NULL OR list_contains(operations_in, operation))
      AND (operations_not_in IS NULL OR NOT list_contains(operations_not_in, operation))
      AND (status_in IS NULL OR (status_code IS NOT NULL AND list_contains(status_in, status_code)))
      AND (status_not_in IS NULL OR (status_code IS NOT NULL AND NOT list_contains(status_not_in, status_code)))
      AND (status_min IS NULL OR status_code >= status_min)
      AND (status_max IS NULL OR status_code <= status_max)
      AND (want_success IS NULL OR success = want_success)
)
SELECT entry_id, bucket_start, sum(n)::BIGINT AS n
FROM matched
WHERE bucket_start >= window_start
GROUP BY entry_id, bucket_start;
