SELECT bucket_start, good, total FROM slo_hourly WHERE slo = $slo ORDER BY bucket_start;
