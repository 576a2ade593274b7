-- Validates the staged rows of one ratios file: timestamp, service, operation, ratio in [0, 1].
-- $raw_cutoff: the raw retention cutoff (NULL when raw rows were never cut); rows before it are refused.
CREATE OR REPLACE TEMP TABLE validated AS
WITH src AS (
    SELECT
        _row,
        _pre_reason,
        nullif(trim("timestamp"), '') AS ts_text,
        nullif(trim(service), '')     AS service_text,
        coalesce(trim(operation), '') AS operation_text,
        nullif(trim(ratio), '')       AS ratio_text
    FROM staging
),
typed AS (
    SELECT *, sloscope_parse_ts(ts_text) AS ts, TRY_CAST(ratio_text AS DOUBLE) AS ratio_number
    FROM src
)
SELECT
    _row,
    ts,
    service_text AS service,
    operation_text AS operation,
    CASE WHEN isfinite(ratio_number) AND ratio_number BETWEEN 0 AND 1 THEN ratio_number END AS ratio,
    coalesce(_pre_reason, nullif(concat_ws('; ',
        sloscope_ts_problem(ts_text, ts, $latest_allowed),
        sloscope_retention_problem(ts, CAST($raw_cutoff AS TIMESTAMP)),
        nullif(sloscope_name_problems(service_text, operation_text), ''),
        CASE WHEN ratio_text IS NULL THEN 'ratio is missing'
             WHEN NOT coalesce(isfinite(ratio_number) AND ratio_number BETWEEN 0 AND 1, false)
             THEN 'ratio ''' || left(ratio_text, 40) || ''' is not a number between 0 and 1' END
    ), '')) AS reason
FROM typed;
