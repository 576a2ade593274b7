-- Validates the staged rows of one events file (all columns VARCHAR) into typed columns and a reason.
-- A row is loaded when reason IS NULL; otherwise it goes to the quarantine with that reason.
-- Timestamp and name rules are the sloscope_* macros in sql/schema.sql, shared with the counts validator.
-- $raw_cutoff: the raw retention cutoff (NULL when raw rows were never cut); rows before it are refused.
--
-- Event ids (optional column event_id; blank = no id) are checked by sql/ingest_dedup_events.sql, which
-- runs next on the rows this leaves valid.
CREATE OR REPLACE TEMP TABLE validated AS
WITH src AS (
    SELECT
        _row,
        _pre_reason,
        nullif(trim("timestamp"), '')    AS ts_text,
        nullif(trim(service), '')        AS service_text,
        coalesce(trim(operation), '')    AS operation_text,
        nullif(trim(status_code), '')    AS status_text,
        nullif(lower(trim(success)), '') AS success_text,
        nullif(trim(latency_ms), '')     AS latency_text,
        nullif(trim(event_id), '')       AS event_id_text
    FROM staging
),
typed AS (
    SELECT
        *,
        sloscope_parse_ts(ts_text) AS ts,
        TRY_CAST(status_text AS DOUBLE) AS status_number,
        TRY_CAST(latency_text AS DOUBLE) AS latency_number
    FROM src
),
checked AS (
    SELECT
        *,
        CASE WHEN status_number = floor(status_number) AND status_number BETWEEN 100 AND 599
             THEN CAST(status_number AS SMALLINT) END AS status_code,
        CASE WHEN success_text IN ('true', 't', '1', 'yes', 'y') THEN true
             WHEN success_text IN ('false', 'f', '0', 'no', 'n') THEN false END AS success,
        CASE WHEN isfinite(latency_number) AND latency_number >= 0 THEN latency_number END AS latency_ms
    FROM typed
)
SELECT
    _row,
    ts,
    service_text AS service,
    operation_text AS operation,
    status_code,
    success,
    latency_ms,
    event_id_text AS event_id,
    coalesce(_pre_reason, nullif(concat_ws('; ',
        sloscope_ts_problem(ts_text, ts, $latest_allowed),
        sloscope_retention_problem(ts, CAST($raw_cutoff AS TIMESTAMP)),
        nullif(sloscope_name_problems(service_text, operation_text), ''),
        CASE WHEN status_text IS NOT NULL AND status_code IS NULL
             THEN 'status_code ''' || left(status_text, 40) || ''' is not an HTTP status (an integer 100-599)' END,
        CASE WHEN success_text IS NOT NULL AND success IS NULL
             THEN 'success ''' || left(success_text, 40) || ''' is not a boolean (true/false/1/0)' END,
        CASE WHEN status_text IS NULL AND success_text IS NULL
             THEN 'neither status_code nor success is given' END,
        CASE WHEN latency_text IS NOT NULL AND latency_ms IS NULL
             THEN 'latency_ms ''' || left(latency_text, 40) || ''' is not a finite number >= 0' END,
        CASE WHEN latency_ms > $max_latency_ms
             THEN 'latency_ms ' || latency_ms || ' is above the plausible maximum of ' || $max_latency_ms
                  || ' ms ([quality] max_latency_ms)' END,
        CASE WHEN length(event_id_text) > 200 THEN 'event_id is longer than 200 characters' END
    ), '')) AS reason
FROM checked;
