-- Retention, hourly aggregates before $cutoff (lowered below any day not yet rolled up).
-- sli_ratio_hour is not here: it is the coarsest grain of precomputed ratios and is kept with the days.
DELETE FROM sli_counts_hour WHERE bucket_start < $cutoff;
DELETE FROM sli_threshold_hour WHERE bucket_start < $cutoff;
DELETE FROM latency_histogram_hour WHERE bucket_start < $cutoff;
-- Data presence per service and hour (evaluation's completeness), kept as long as the hours it describes.
DELETE FROM sli_presence_hour WHERE bucket_start < $cutoff;
