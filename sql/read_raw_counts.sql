SELECT * FROM raw_counts;
