-- Row groups of a Parquet file and DuckDB's worker threads: a file read straight into raw_events is read
-- one row group per thread, so only a file with several row groups per thread loads faster that way
-- (pipelines/slo/ingest.py, _direct_load_pays).
SELECT sum(num_row_groups), current_setting('threads') FROM parquet_file_metadata($path);
