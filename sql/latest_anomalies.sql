-- The newest scored hour of every SLO series since $since (anomaly alerts look at the latest point only),
-- with the median of the 24 hours before it: alerts fire only in the bad direction (above it).
WITH recent AS (
    SELECT slo, metric, bucket_start, value, score, confidence, is_anomaly,
           median(value) OVER (
               PARTITION BY slo, metric ORDER BY bucket_start ROWS BETWEEN 24 PRECEDING AND 1 PRECEDING
           ) AS typical
    FROM slo_anomalies
    WHERE bucket_start >= $since::TIMESTAMP - INTERVAL 25 HOUR
)
SELECT slo, metric, bucket_start, value, score, confidence, is_anomaly, typical
FROM recent
WHERE bucket_start >= $since
QUALIFY row_number() OVER (PARTITION BY slo, metric ORDER BY bucket_start DESC) = 1
ORDER BY slo, metric;
