-- The newest scored hour of every SLO series since $since (anomaly alerts look at the latest point only).
SELECT slo, metric, bucket_start, value, score, confidence, is_anomaly
FROM slo_anomalies
WHERE bucket_start >= $since
QUALIFY row_number() OVER (PARTITION BY slo, metric ORDER BY bucket_start DESC) = 1
ORDER BY slo, metric;
