-- The first hour with data of any kind (request counts or precomputed ratios).
SELECT min(oldest) FROM (
    SELECT min(bucket_start) AS oldest FROM sli_counts_hour
    UNION ALL
    SELECT min(bucket_start) FROM sli_ratio_hour
);
