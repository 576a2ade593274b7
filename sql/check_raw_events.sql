-- Exact data-quality counts over all raw events (bad rows never get here; this guards the invariant).
-- Null latency and status code are legitimate (events without a measurement or a status).
SELECT
    count(*)                                                         AS rows_checked,
    count(*) FILTER (WHERE ts IS NULL)                               AS missing_timestamp,
    count(*) FILTER (WHERE ts > $latest_allowed)                     AS future_timestamp,
    count(*) FILTER (WHERE service IS NULL OR service = '')          AS missing_service,
    count(*) FILTER (WHERE latency_ms < 0 OR NOT isfinite(latency_ms)) AS invalid_latency,
    count(*) FILTER (WHERE latency_ms > $max_latency_ms)             AS latency_above_max,
    count(*) FILTER (WHERE status_code NOT BETWEEN 100 AND 599)      AS invalid_status,
    count(*) FILTER (WHERE status_code IS NULL AND success IS NULL)  AS missing_outcome
FROM raw_events;
