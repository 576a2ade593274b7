-- Declared thresholds whose exact counts start later than their service's latency data: declared after
-- retention deleted the service's oldest raw events, so only the raw range could be counted exactly.
-- Both come from the same events (those with a latency), so without a gap their first days are equal.
-- Daily tables: the tier kept longest, and the same retention cuts both.
WITH history AS (
    SELECT service, min(bucket_start) AS history_from FROM latency_histogram_day GROUP BY service
),
exact AS (
    SELECT service, threshold_ms, min(bucket_start) AS exact_from FROM sli_threshold_day GROUP BY ALL
)
SELECT t.service, t.threshold_ms, e.exact_from, h.history_from
FROM sli_thresholds t
JOIN history h ON h.service = t.service
LEFT JOIN exact e ON e.service = t.service AND e.threshold_ms = t.threshold_ms
WHERE e.exact_from IS NULL OR e.exact_from > h.history_from
ORDER BY t.service, t.threshold_ms;
