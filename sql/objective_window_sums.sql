-- Window and burn-window sums for many filters over [$lo, $hi) of one grain (the batched form of
-- objective_counts.sql). pipelines/slo/budget.py cuts the windows ending at $as_of into ranges of whole
-- days, whole hours and ragged minutes, none holding a window start inside it, runs this once per range
-- with that grain's tables, and adds the ranges up. As every bucket of the range lies in the same windows,
-- the rows are first summed per series over the range and stand at $lo: `$lo >= window start` selects
-- exactly the ranges of that window, and the joins below see one row per series instead of one per bucket.
-- batch_filters holds one row per (entry, service): the same canonical filter fields as the bound
-- parameters of objective_counts.sql, plus the entry's window start. Values only: no SQL from config.
-- Data presence (completeness) is not summed here: see objective_presence.sql.
-- Three equi-joins (plain counts; the upper latency bound's threshold rows; the lower bound's) rather than
-- one join with OR, so each is a hash join: count(L <= x <= U) = le(U) - lt(L), as in objective_counts.sql.
WITH counts AS (
    SELECT $lo::TIMESTAMP AS bucket_start, service, operation, status_code, success,
           sum(requests) AS requests, sum(latency_count) AS latency_count
    FROM {counts}
    WHERE bucket_start >= $lo AND bucket_start < $hi
    GROUP BY ALL
),
thresholds AS (
    SELECT $lo::TIMESTAMP AS bucket_start, service, operation, status_code, success, threshold_ms,
           sum(le_count) AS le_count, sum(lt_count) AS lt_count
    FROM {thresholds}
    WHERE bucket_start >= $lo AND bucket_start < $hi
    GROUP BY ALL
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
SELECT
    entry_id,
    coalesce(sum(n) FILTER (WHERE bucket_start >= window_start), 0)::BIGINT                       AS n_window,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 5 MINUTE), 0)::BIGINT          AS n_5m,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 30 MINUTE), 0)::BIGINT         AS n_30m,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 1 HOUR), 0)::BIGINT            AS n_1h,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 2 HOUR), 0)::BIGINT            AS n_2h,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 6 HOUR), 0)::BIGINT            AS n_6h,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 1 DAY), 0)::BIGINT             AS n_1d,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 3 DAY), 0)::BIGINT             AS n_3d
FROM matched
GROUP BY entry_id;
