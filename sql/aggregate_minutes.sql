-- Recomputes the 1-minute aggregates for [$start, $end) from the raw tables (delete, then insert).
-- success is the availability outcome: a 5xx or success = false is a failure.
DELETE FROM sli_counts_minute WHERE bucket_start >= $start AND bucket_start < $end;
INSERT INTO sli_counts_minute
SELECT date_trunc('minute', ts) AS bucket_start, service, operation, status_code,
       coalesce(status_code < 500, true) AND coalesce(success, true) AS success,
       count(*) AS requests, count(latency_ms) AS latency_count
FROM raw_events
WHERE ts >= $start AND ts < $end
GROUP BY ALL;
-- Counts-schema rows become a success row (kept even at zero traffic: it records that data arrived)
-- and a failure row when there were failures.
INSERT INTO sli_counts_minute
SELECT date_trunc('minute', ts), service, operation, NULL, true, sum(good), 0
FROM raw_counts
WHERE ts >= $start AND ts < $end
GROUP BY ALL;
INSERT INTO sli_counts_minute
SELECT date_trunc('minute', ts), service, operation, NULL, false, sum(total - good), 0
FROM raw_counts
WHERE ts >= $start AND ts < $end
GROUP BY ALL
HAVING sum(total - good) > 0;
DELETE FROM latency_histogram_minute WHERE bucket_start >= $start AND bucket_start < $end;
INSERT INTO latency_histogram_minute
SELECT date_trunc('minute', ts), service, operation,
       coalesce(status_code < 500, true) AND coalesce(success, true) AS success,
       CASE WHEN latency_ms < $min_latency THEN $zero_bucket
            ELSE CAST(ceil(ln(latency_ms) / $ln_gamma) AS INTEGER) END AS bucket,
       count(*) AS count
FROM raw_events
WHERE ts >= $start AND ts < $end AND latency_ms IS NOT NULL
GROUP BY ALL;
