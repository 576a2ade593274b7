-- Not a statement: the end of a WITH list, spliced by pipelines/sqlfiles.py into objective_counts.sql and
-- objective_causes.sql at their `-- include: objective_filter_matched` line (no `;` here).
-- The including query first defines the CTE `grain`: count rows (threshold_ms NULL, requests,
-- latency_count) and threshold rows (threshold_ms, le_count, lt_count) with service, operation,
-- status_code and success. Defines `matched`: the grain rows matching one canonical filter, given as the
-- bound parameters of EventFilter.sql_params() (pipelines/slo/filters.py), each with n, its events:
-- without latency bounds a count row counts its requests; with bounds the exact threshold counts are
-- used: count(L <= x <= U) = le(U) - lt(L), count(x >= L) = latency_count - lt(L), and so on.
matched AS (
    SELECT *,
           CASE WHEN threshold_ms IS NULL THEN
                    CASE WHEN $has_upper THEN 0 WHEN $has_lower THEN latency_count ELSE requests END
                ELSE
                    (CASE WHEN $has_upper AND threshold_ms = $upper::DOUBLE
                          THEN CASE WHEN $upper_inclusive THEN le_count ELSE lt_count END ELSE 0 END)
                  - (CASE WHEN $has_lower AND threshold_ms = $lower::DOUBLE
                          THEN CASE WHEN $lower_inclusive THEN lt_count ELSE le_count END ELSE 0 END)
           END AS n
    FROM grain
    WHERE NOT $matches_nothing
      AND list_contains($services::VARCHAR[], service)
      AND ($operations_in::VARCHAR[] IS NULL OR list_contains($operations_in::VARCHAR[], operation))
      AND ($operations_not_in::VARCHAR[] IS NULL OR NOT list_contains($operations_not_in::VARCHAR[], operation))
      AND ($status_in::INTEGER[] IS NULL OR (status_code IS NOT NULL AND list_contains($status_in::INTEGER[], status_code)))
      AND ($status_not_in::INTEGER[] IS NULL OR (status_code IS NOT NULL AND NOT list_contains($status_not_in::INTEGER[], status_code)))
      AND ($status_min::INTEGER IS NULL OR status_code >= $status_min::INTEGER)
      AND ($status_max::INTEGER IS NULL OR status_code <= $status_max::INTEGER)
      AND ($success::BOOLEAN IS NULL OR success = $success::BOOLEAN)
)
