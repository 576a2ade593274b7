-- Validates the staged rows of one counts file: bucket start, service, operation, total, good and/or bad.
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
        CASE WHEN regexp_full_match(total_text, '[0-9]+(\.0+)?') THEN TRY_CAST(TRY_CAST(total_text AS DECIMAL(38, 1)) AS BIGINT) END AS total_number,
        CASE WHEN regexp_full_match(good_text, '[0-9]+(\.0+)?') THEN TRY_CAST(TRY_CAST(good_text AS DECIMAL(38, 1)) AS BIGINT) END AS good_number,
        CASE WHEN regexp_full_match(bad_text, '[0-9]+(\.0+)?') THEN TRY_CAST(TRY_CAST(bad_text AS DECIMAL(38, 1)) AS BIGINT) END AS bad_number
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
        coalesce(good_number, total_number - bad_number) AS good_count
    FROM parsed
)
SELECT
    _row,
    ts,
    service_text AS service,
    operation_text AS operation,
    total_number AS total,
    good_count AS good,
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
        CASE WHEN total_text IS NULL THEN 'total is missing'
             WHEN total_number IS NULL THEN 'total ''' || left(total_text, 40) || ''' is not a whole number >= 0' END,
        CASE WHEN good_text IS NOT NULL AND good_number IS NULL
             THEN 'good ''' || left(good_text, 40) || ''' is not a whole number >= 0' END,
        CASE WHEN bad_text IS NOT NULL AND bad_number IS NULL
             THEN 'bad ''' || left(bad_text, 40) || ''' is not a whole number >= 0' END,
        CASE WHEN good_text IS NULL AND bad_text IS NULL THEN 'neither good nor bad is given' END,
        CASE WHEN good_number > total_number
             THEN 'good ' || good_number || ' exceeds total ' || total_number END,
        CASE WHEN bad_number > total_number
             THEN 'bad ' || bad_number || ' exceeds total ' || total_number END,
        CASE WHEN good_number IS NOT NULL AND bad_number IS NOT NULL AND total_number IS NOT NULL
                  AND good_number + bad_number <> total_number
             THEN 'good ' || good_number || ' + bad ' || bad_number || ' is not total ' || total_number END
    ), '')) AS reason
FROM typed;
