-- The newest minute with data of any kind (request counts or precomputed ratios).
SELECT max(newest) FROM (
    SELECT max(bucket_start) AS newest FROM sli_counts_minute
    UNION ALL
    SELECT max(bucket_start) FROM sli_ratio_minute
);
