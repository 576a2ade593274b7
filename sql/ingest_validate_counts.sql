-- Validates the staged rows of one counts file: bucket start, service, operation, total, good and/or bad.
-- Timestamp and name rules are the sloscope_* macros in sql/schema.sql, shared with the events validator.
-- $raw_cutoff: the raw retention cutoff (NULL when raw rows were never cut); rows before it are refused.
CREATE OR REPLACE TEMP TABLE validated AS
WITH src AS (
    SELECT
        _row,
        _pre_reason,
        nullif(trim("timestamp"), '') AS ts_text,
        nullif(trim(service), '')     AS service_text,
        coalesce(trim(operation), '') AS operation_text,
        nullif(trim(total), '')       AS total_text,
        nullif(trim(good), '')        AS good_text,
        nullif(trim(bad), '')         AS bad_text
    FROM staging
),
typed AS (
    SELECT
        *,
        sloscope_parse_ts(ts_text) AS ts,
        -- Whole numbers only ("12" or "12.0"); huge values fail the BIGINT cast and are reported.
        CASE WHEN regexp_full_match(total_text, '[0-9]+(\.0+)?')
             THEN TRY_CAST(TRY_CAST(total_text AS DECIMAL(38, 1)) AS BIGINT) END AS total_number,
        CASE WHEN regexp_full_match(good_text, '[0-9]+(\.0+)?')
             THEN TRY_CAST(TRY_CAST(good_text AS DECIMAL(38, 1)) AS BIGINT) END AS good_number,
        CASE WHEN regexp_full_match(bad_text, '[0-9]+(\.0+)?')
             THEN TRY_CAST(TRY_CAST(bad_text AS DECIMAL(38, 1)) AS BIGINT) END AS bad_number
    FROM src
)
SELECT
    _row,
    ts,
    service_text AS service,
    operation_text AS operation,
    total_number AS total,
    coalesce(good_number, total_number - bad_number) AS good,
    coalesce(_pre_reason, nullif(concat_ws('; ',
        sloscope_ts_problem(ts_text, ts, $latest_allowed),
        sloscope_retention_problem(ts, CAST($raw_cutoff AS TIMESTAMP)),
        nullif(sloscope_name_problems(service_text, operation_text), ''),
        CASE WHEN total_text IS NULL THEN 'total is missing'
             WHEN total_number IS NULL THEN 'total ''' || left(total_text, 40) || ''' is not a whole number >= 0' END,
        CASE WHEN good_text IS NOT NULL AND good_number IS NULL
             THEN 'good ''' || left(good_text, 40) || ''' is not a whole number >= 0' END,
        CASE WHEN bad_text IS NOT NULL AND bad_number IS NULL
             THEN 'bad ''' || left(bad_text, 40) || ''' is not a whole number >= 0' END,
        CASE WHEN good_text IS NULL AND bad_text IS NULL THEN 'neither good nor bad is given' END,
        CASE WHEN good_number > total_number THEN 'good ' || good_number || ' exceeds total ' || total_number END,
        CASE WHEN bad_number > total_number THEN 'bad ' || bad_number || ' exceeds total ' || total_number END,
        CASE WHEN good_number IS NOT NULL AND bad_number IS NOT NULL AND total_number IS NOT NULL
                  AND good_number + bad_number <> total_number
             THEN 'good ' || good_number || ' + bad ' || bad_number || ' is not total ' || total_number END
    ), '')) AS reason
FROM typed;
