-- Retention, the coarsest grain of each family: daily aggregates, and hourly ratios (there is no daily
-- ratio table). Nothing summarises these rows, so deleting them loses that history for good.
DELETE FROM sli_counts_day WHERE bucket_start < $cutoff;
DELETE FROM sli_threshold_day WHERE bucket_start < $cutoff;
DELETE FROM latency_histogram_day WHERE bucket_start < $cutoff;
DELETE FROM sli_ratio_hour WHERE bucket_start < $cutoff;
