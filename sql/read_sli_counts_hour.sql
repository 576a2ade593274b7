SELECT * FROM sli_counts_hour;
