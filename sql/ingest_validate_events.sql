-- Validates the staged rows of one events file (all columns VARCHAR) into typed columns and a reason.
-- A row is loaded when reason IS NULL; otherwise it goes to the quarantine with that reason.
CREATE OR REPLACE TEMP TABLE validated AS
WITH src AS (
    SELECT
        _row,
        _pre_reason,
        nullif(trim("timestamp"), '')         AS ts_text,
        nullif(trim(service), '')             AS service_text,
        coalesce(trim(operation), '')         AS operation_text,
        nullif(trim(status_code), '')         AS status_text,
        nullif(lower(trim(success)), '')      AS success_text,
        nullif(trim(latency_ms), '')          AS latency_text
    FROM staging
),
parsed AS (
    SELECT
        *,
        CASE WHEN regexp_full_match(ts_text, '-?[0-9]+(\.[0-9]+)?') THEN
            CASE WHEN TRY_CAST(ts_text AS DOUBLE) >= 1e11 THEN TRY_CAST(ts_text AS DOUBLE) / 1000.0
                 ELSE TRY_CAST(ts_text AS DOUBLE) END
        END AS epoch_seconds,
        regexp_full_match(
            ts_text,
            '[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)? ?(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)'
        ) AS iso_with_zone,
        TRY_CAST(status_text AS DOUBLE) AS status_number,
        TRY_CAST(latency_text AS DOUBLE) AS latency_number
    FROM src
),
typed AS (
    SELECT
        *,
        CASE
            WHEN epoch_seconds BETWEEN 0 AND 4102444800
                THEN make_timestamp(CAST(round(epoch_seconds * 1000000) AS BIGINT))
            WHEN iso_with_zone THEN timezone('UTC', TRY_CAST(replace(ts_text, ',', '.') AS TIMESTAMPTZ))
        END AS ts,
        CASE WHEN status_number = floor(status_number) AND status_number BETWEEN 100 AND 599
             THEN CAST(status_number AS SMALLINT) END AS status_code,
        CASE WHEN success_text IN ('true', 't', '1', 'yes', 'y') THEN true
             WHEN success_text IN ('false', 'f', '0', 'no', 'n') THEN false END AS success,
        CASE WHEN isfinite(latency_number) AND latency_number >= 0 THEN latency_number END AS latency_ms
    FROM parsed
)
SELECT
    _row,
    ts,
    service_text AS service,
    operation_text AS operation,
    status_code,
    success,
    latency_ms,
    coalesce(_pre_reason, nullif(concat_ws('; ',
        CASE WHEN ts_text IS NULL THEN 'timestamp is missing'
             WHEN ts IS NULL AND regexp_full_match(ts_text,
                      '[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?')
                 THEN 'timestamp ''' || ts_text || ''' has no UTC offset; write e.g. ' || ts_text || 'Z'
             WHEN ts IS NULL THEN 'timestamp ''' || left(ts_text, 60)
                  || ''' is not ISO-8601 with a UTC offset, nor epoch seconds or milliseconds'
             WHEN ts > $latest_allowed THEN 'timestamp ' || strftime(ts, '%Y-%m-%dT%H:%M:%SZ')
                  || ' is in the future' END,
        CASE WHEN service_text IS NULL THEN 'service is missing'
             WHEN length(service_text) > 200 THEN 'service is longer than 200 characters' END,
        CASE WHEN length(operation_text) > 200 THEN 'operation is longer than 200 characters' END,
        CASE WHEN status_text IS NOT NULL AND status_code IS NULL
             THEN 'status_code ''' || left(status_text, 40) || ''' is not an HTTP status (an integer 100-599)' END,
        CASE WHEN success_text IS NOT NULL AND success IS NULL
             THEN 'success ''' || left(success_text, 40) || ''' is not a boolean (true/false/1/0)' END,
        CASE WHEN status_text IS NULL AND success_text IS NULL
             THEN 'neither status_code nor success is given' END,
        CASE WHEN latency_text IS NOT NULL AND latency_ms IS NULL
             THEN 'latency_ms ''' || left(latency_text, 40) || ''' is not a finite number >= 0' END
    ), '')) AS reason
FROM typed;
