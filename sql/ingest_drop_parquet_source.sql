DROP VIEW IF EXISTS parquet_source;
