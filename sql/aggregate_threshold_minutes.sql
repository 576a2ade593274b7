-- Exact latency-threshold counts for [$start, $end): for every threshold an SLO declares for a
-- service, how many requests took <= and < that many milliseconds.
DELETE FROM sli_threshold_minute WHERE bucket_start >= $start AND bucket_start < $end;
INSERT INTO sli_threshold_minute
SELECT date_trunc('minute', e.ts), e.service, e.operation, e.status_code,
       coalesce(e.status_code < 500, true) AND coalesce(e.success, true) AS success,
       t.threshold_ms,
       count(*) FILTER (WHERE e.latency_ms <= t.threshold_ms) AS le_count,
       count(*) FILTER (WHERE e.latency_ms < t.threshold_ms) AS lt_count
FROM raw_events e
JOIN sli_thresholds t ON t.service = e.service
WHERE e.ts >= $start AND e.ts < $end AND e.latency_ms IS NOT NULL
GROUP BY ALL;
