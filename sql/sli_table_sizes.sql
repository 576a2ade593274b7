SELECT
    (SELECT count(*) FROM sli_counts_minute)        AS sli_counts_minute,
    (SELECT count(*) FROM sli_counts_hour)          AS sli_counts_hour,
    (SELECT count(*) FROM sli_counts_day)           AS sli_counts_day,
    (SELECT count(*) FROM sli_threshold_minute)     AS sli_threshold_minute,
    (SELECT count(*) FROM sli_threshold_hour)       AS sli_threshold_hour,
    (SELECT count(*) FROM sli_threshold_day)        AS sli_threshold_day,
    (SELECT count(*) FROM latency_histogram_minute) AS latency_histogram_minute,
    (SELECT count(*) FROM latency_histogram_hour)   AS latency_histogram_hour,
    (SELECT count(*) FROM latency_histogram_day)    AS latency_histogram_day;
