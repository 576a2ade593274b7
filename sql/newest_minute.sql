SELECT max(bucket_start) FROM sli_counts_minute;
