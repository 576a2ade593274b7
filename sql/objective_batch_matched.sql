-- Not a statement: the end of a WITH list, spliced by pipelines/sqlfiles.py into objective_window_sums.sql
-- and objective_minute_series.sql at their `-- include: objective_batch_matched` line (no `;` here).
-- The including query first defines the CTEs `counts` (bucket_start, service, operation, status_code,
-- success, requests, latency_count) and `thresholds` (the same keys, threshold_ms, le_count, lt_count).
-- Defines `matched`: entry_id, window_start, bucket_start, n = the events of that bucket row matching the
-- entry's filter in batch_filters (one row per entry and service: the canonical filter fields of
-- objective_counts.sql as values, plus the entry's window start).
-- Three equi-joins (plain counts; the upper latency bound's threshold rows; the lower bound's) rather than
-- one join with OR, so each is a hash join: count(L <= x <= U) = le(U) - lt(L), as in objective_counts.sql.
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
