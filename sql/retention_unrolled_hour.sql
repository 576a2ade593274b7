-- The oldest hourly aggregate before $cutoff whose day has no rollup row of its service and operation.
SELECT min(h.bucket_start) FROM sli_counts_hour h
ANTI JOIN sli_counts_day d
    ON d.bucket_start = date_trunc('day', h.bucket_start) AND d.service = h.service AND d.operation = h.operation
WHERE h.bucket_start < $cutoff;
