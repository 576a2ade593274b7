-- Rows the typed Parquet validation deferred to the text rules (sql/ingest_validate_parquet.sql).
SELECT _row FROM validated WHERE reason = 'deferred' ORDER BY _row;
