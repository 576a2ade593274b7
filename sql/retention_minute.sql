-- Retention, 1-minute aggregates before $cutoff (lowered below any hour not yet rolled up).
DELETE FROM sli_counts_minute WHERE bucket_start < $cutoff;
DELETE FROM sli_threshold_minute WHERE bucket_start < $cutoff;
DELETE FROM latency_histogram_minute WHERE bucket_start < $cutoff;
DELETE FROM sli_ratio_minute WHERE bucket_start < $cutoff;
