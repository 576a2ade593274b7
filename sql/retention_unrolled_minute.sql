-- The oldest minute aggregate before $cutoff whose hour has no rollup row of its service and operation.
SELECT min(bucket_start) FROM (
    SELECT m.bucket_start FROM sli_counts_minute m
    ANTI JOIN sli_counts_hour h
        ON h.bucket_start = date_trunc('hour', m.bucket_start) AND h.service = m.service
       AND h.operation = m.operation
    WHERE m.bucket_start < $cutoff
    UNION ALL
    SELECT m.bucket_start FROM sli_ratio_minute m
    ANTI JOIN sli_ratio_hour h
        ON h.bucket_start = date_trunc('hour', m.bucket_start) AND h.service = m.service
       AND h.operation = m.operation
    WHERE m.bucket_start < $cutoff
);
