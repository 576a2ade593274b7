-- The typed Parquet validation's rules, one row at a time (included by sql/ingest_validate_parquet.sql,
-- which explains them, and by the direct load's sql/ingest_parquet_check.sql and sql/ingest_load_parquet.sql,
-- which must decide exactly as it does): `src` reads the cells of `parquet_source` as the text validation
-- would, `checked` adds `accepted`, true only for a row that certainly passes every rule.
src AS (
    SELECT
        _row,
        make_timestamp(epoch_us(ts))    AS ts,
        nullif(trim(service), '')       AS service,
        coalesce(trim(operation), '')   AS operation,
        status_number,
        success,
        latency_number,
        nullif(trim(event_id), '')      AS event_id
    FROM parquet_source
),
checked AS (
    SELECT
        *,
        coalesce(
            ts >= TIMESTAMP '1970-01-01' AND ts <= $latest_allowed
            AND (CAST($raw_cutoff AS TIMESTAMP) IS NULL
                 OR date_trunc('minute', ts) >= CAST($raw_cutoff AS TIMESTAMP))
            AND length(service) <= 200 AND length(operation) <= 200
            AND (status_number IS NULL
                 OR (status_number = floor(status_number) AND status_number BETWEEN 100 AND 599))
            AND (status_number IS NOT NULL OR success IS NOT NULL)
            AND (latency_number IS NULL
                 OR (isfinite(latency_number) AND latency_number >= 0 AND latency_number <= $max_latency_ms))
            AND (event_id IS NULL OR length(event_id) <= 200),
            false) AS accepted
    FROM src
)
