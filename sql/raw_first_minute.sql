SELECT min(bucket_start) FROM sli_counts_hour;
