-- The warehouse. Times are naive TIMESTAMPs holding UTC; aggregate tables share one grain:
-- (bucket_start, service, operation, status_code, success) where success is the availability outcome
-- (no 5xx and success not false). Counts-schema rows carry status_code NULL.

CREATE TABLE IF NOT EXISTS ingested_files (
    file_id          INTEGER PRIMARY KEY,
    path             VARCHAR NOT NULL,
    sha256           VARCHAR NOT NULL,
    format           VARCHAR NOT NULL,
    schema_kind      VARCHAR,
    status           VARCHAR NOT NULL,   -- loaded | superseded | failed | duplicate
    rows_read        BIGINT NOT NULL,
    rows_loaded      BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    min_ts           TIMESTAMP,
    max_ts           TIMESTAMP,
    error            VARCHAR,
    ingested_at      TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS raw_events (
    ts          TIMESTAMP NOT NULL,
    service     VARCHAR NOT NULL,
    operation   VARCHAR NOT NULL,
    status_code SMALLINT,
    success     BOOLEAN,
    latency_ms  DOUBLE,
    file_id     INTEGER NOT NULL,
    source_row  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw_counts (
    ts         TIMESTAMP NOT NULL,
    service    VARCHAR NOT NULL,
    operation  VARCHAR NOT NULL,
    total      BIGINT NOT NULL,
    good       BIGINT NOT NULL,
    file_id    INTEGER NOT NULL,
    source_row BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS quarantine (
    file_id        INTEGER NOT NULL,
    path           VARCHAR NOT NULL,
    source_row     BIGINT NOT NULL,
    reason         VARCHAR NOT NULL,
    record         VARCHAR,
    quarantined_at TIMESTAMP NOT NULL
);

-- Minute ranges whose aggregates must be recomputed; written with the raw rows, consumed by aggregation.
CREATE TABLE IF NOT EXISTS dirty_ranges (
    start_minute TIMESTAMP NOT NULL,
    end_minute   TIMESTAMP NOT NULL,
    file_id      INTEGER NOT NULL
);

-- Latency thresholds declared by SLOs, per service; exact counts are kept for each.
CREATE TABLE IF NOT EXISTS sli_thresholds (
    service      VARCHAR NOT NULL,
    threshold_ms DOUBLE NOT NULL,
    PRIMARY KEY (service, threshold_ms)
);

CREATE TABLE IF NOT EXISTS sli_counts_minute (
    bucket_start TIMESTAMP NOT NULL, service VARCHAR NOT NULL, operation VARCHAR NOT NULL,
    status_code SMALLINT, success BOOLEAN NOT NULL, requests BIGINT NOT NULL, latency_count BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sli_counts_hour (
    bucket_start TIMESTAMP NOT NULL, service VARCHAR NOT NULL, operation VARCHAR NOT NULL,
    status_code SMALLINT, success BOOLEAN NOT NULL, requests BIGINT NOT NULL, latency_count BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sli_counts_day (
    bucket_start TIMESTAMP NOT NULL, service VARCHAR NOT NULL, operation VARCHAR NOT NULL,
    status_code SMALLINT, success BOOLEAN NOT NULL, requests BIGINT NOT NULL, latency_count BIGINT NOT NULL
);

-- le_count: requests with latency <= threshold; lt_count: latency < threshold (exact, from raw events).
CREATE TABLE IF NOT EXISTS sli_threshold_minute (
    bucket_start TIMESTAMP NOT NULL, service VARCHAR NOT NULL, operation VARCHAR NOT NULL,
    status_code SMALLINT, success BOOLEAN NOT NULL, threshold_ms DOUBLE NOT NULL,
    le_count BIGINT NOT NULL, lt_count BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sli_threshold_hour (
    bucket_start TIMESTAMP NOT NULL, service VARCHAR NOT NULL, operation VARCHAR NOT NULL,
    status_code SMALLINT, success BOOLEAN NOT NULL, threshold_ms DOUBLE NOT NULL,
    le_count BIGINT NOT NULL, lt_count BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sli_threshold_day (
    bucket_start TIMESTAMP NOT NULL, service VARCHAR NOT NULL, operation VARCHAR NOT NULL,
    status_code SMALLINT, success BOOLEAN NOT NULL, threshold_ms DOUBLE NOT NULL,
    le_count BIGINT NOT NULL, lt_count BIGINT NOT NULL
);

-- Log-bucket latency histogram (bucket i holds (gamma^(i-1), gamma^i] ms; see pipelines/slo/histogram.py).
CREATE TABLE IF NOT EXISTS latency_histogram_minute (
    bucket_start TIMESTAMP NOT NULL, service VARCHAR NOT NULL, operation VARCHAR NOT NULL,
    success BOOLEAN NOT NULL, bucket INTEGER NOT NULL, count BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS latency_histogram_hour (
    bucket_start TIMESTAMP NOT NULL, service VARCHAR NOT NULL, operation VARCHAR NOT NULL,
    success BOOLEAN NOT NULL, bucket INTEGER NOT NULL, count BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS latency_histogram_day (
    bucket_start TIMESTAMP NOT NULL, service VARCHAR NOT NULL, operation VARCHAR NOT NULL,
    success BOOLEAN NOT NULL, bucket INTEGER NOT NULL, count BIGINT NOT NULL
);

-- The SLO objectives as loaded from OpenSLO files (replaced on every load).
CREATE TABLE IF NOT EXISTS slo_objectives (
    slo              VARCHAR NOT NULL,
    display_name     VARCHAR,
    service          VARCHAR NOT NULL,
    objective        VARCHAR NOT NULL,
    objective_index  INTEGER NOT NULL,
    target           DOUBLE NOT NULL,
    budgeting_method VARCHAR NOT NULL,
    window_seconds   BIGINT NOT NULL,
    source_file      VARCHAR NOT NULL,
    definition       VARCHAR NOT NULL
);
-- Calendar windows have no fixed length: the window is described by text, window_seconds only when fixed.
ALTER TABLE slo_objectives ALTER COLUMN window_seconds DROP NOT NULL;
ALTER TABLE slo_objectives ADD COLUMN IF NOT EXISTS time_window VARCHAR;

-- Evaluations as of a time; re-evaluating the same as_of replaces its rows.
CREATE TABLE IF NOT EXISTS slo_status (
    as_of              TIMESTAMP NOT NULL,
    slo                VARCHAR NOT NULL,
    display_name       VARCHAR NOT NULL,
    service            VARCHAR NOT NULL,
    objective          VARCHAR NOT NULL,
    objective_index    INTEGER NOT NULL,
    target             DOUBLE NOT NULL,
    budgeting_method   VARCHAR NOT NULL,
    window_start       TIMESTAMP NOT NULL,
    window_end         TIMESTAMP NOT NULL,
    good               BIGINT NOT NULL,
    total              BIGINT NOT NULL,
    sli                DOUBLE,
    budget_consumed    DOUBLE,
    budget_remaining   DOUBLE,
    burn_rates         VARCHAR NOT NULL,   -- JSON object, window label -> burn rate or null
    status             VARCHAR NOT NULL,
    evaluated_at       TIMESTAMP NOT NULL
);
-- Added with budgeting methods, corrections and policies; ALTER keeps warehouses made before them usable.
ALTER TABLE slo_status ADD COLUMN IF NOT EXISTS policy_state VARCHAR;
ALTER TABLE slo_status ADD COLUMN IF NOT EXISTS data_completeness DOUBLE;
ALTER TABLE slo_status ADD COLUMN IF NOT EXISTS details VARCHAR;   -- JSON: period, budget units, exhaustion, corrections

-- Hourly good/total per SLO indicator, for charts and later models.
CREATE TABLE IF NOT EXISTS slo_hourly (
    slo          VARCHAR NOT NULL,
    bucket_start TIMESTAMP NOT NULL,
    good         BIGINT NOT NULL,
    total        BIGINT NOT NULL
);

-- Timestamp parsing shared by the events and counts validators (sql/ingest_validate_*.sql).
-- Accepted: ISO-8601 with a UTC offset, or epoch seconds / milliseconds (values >= 1e11 are ms).
CREATE OR REPLACE MACRO sloscope_epoch_seconds(t) AS
    CASE WHEN regexp_full_match(t, '-?[0-9]+(\.[0-9]+)?') THEN
        CASE WHEN TRY_CAST(t AS DOUBLE) >= 1e11 THEN TRY_CAST(t AS DOUBLE) / 1000.0 ELSE TRY_CAST(t AS DOUBLE) END
    END;
CREATE OR REPLACE MACRO sloscope_iso_no_zone(t) AS
    regexp_full_match(t, '[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?');
-- Offsets are bounded to real ones (at most 14 hours, minutes 00-59).
CREATE OR REPLACE MACRO sloscope_iso_with_zone(t) AS
    regexp_full_match(t, '[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)? ?(Z|z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)');
-- The forms the pattern accepts, normalised to what DuckDB's cast reads: upper-case T and Z, a decimal
-- point, no space before the offset.
CREATE OR REPLACE MACRO sloscope_iso_normalised(t) AS
    regexp_replace(replace(upper(t), ',', '.'), ' ([Z+-][0-9:]*)$', '\1');
CREATE OR REPLACE MACRO sloscope_parse_ts(t) AS
    CASE
        WHEN sloscope_epoch_seconds(t) BETWEEN 0 AND 4102444800
            THEN make_timestamp(CAST(round(sloscope_epoch_seconds(t) * 1000000) AS BIGINT))
        WHEN sloscope_iso_with_zone(t) THEN timezone('UTC', TRY_CAST(sloscope_iso_normalised(t) AS TIMESTAMPTZ))
    END;
CREATE OR REPLACE MACRO sloscope_ts_problem(t, ts, latest_allowed) AS
    CASE WHEN t IS NULL THEN 'timestamp is missing'
         WHEN ts IS NULL AND sloscope_iso_no_zone(t)
             THEN 'timestamp ''' || t || ''' has no UTC offset; write e.g. ' || t || 'Z'
         WHEN ts IS NULL THEN 'timestamp ''' || left(t, 60)
             || ''' is not ISO-8601 with a UTC offset, nor epoch seconds or milliseconds'
         WHEN ts > latest_allowed THEN 'timestamp ' || strftime(ts, '%Y-%m-%dT%H:%M:%SZ') || ' is in the future'
    END;
CREATE OR REPLACE MACRO sloscope_name_problems(service_text, operation_text) AS
    concat_ws('; ',
        CASE WHEN service_text IS NULL THEN 'service is missing'
             WHEN length(service_text) > 200 THEN 'service is longer than 200 characters' END,
        CASE WHEN length(operation_text) > 200 THEN 'operation is longer than 200 characters' END);

-- Daily SLO history: each objective evaluated as of the end of each UTC day (daily partitions).
CREATE TABLE IF NOT EXISTS slo_history (
    day                DATE NOT NULL,
    slo                VARCHAR NOT NULL,
    display_name       VARCHAR NOT NULL,
    service            VARCHAR NOT NULL,
    objective          VARCHAR NOT NULL,
    objective_index    INTEGER NOT NULL,
    target             DOUBLE NOT NULL,
    budgeting_method   VARCHAR NOT NULL,
    window_start       TIMESTAMP NOT NULL,
    window_end         TIMESTAMP NOT NULL,
    good               BIGINT NOT NULL,
    total              BIGINT NOT NULL,
    sli                DOUBLE,
    budget_consumed    DOUBLE,
    budget_remaining   DOUBLE,
    burn_rates         VARCHAR NOT NULL,
    status             VARCHAR NOT NULL,
    policy_state       VARCHAR,
    data_completeness  DOUBLE,
    details            VARCHAR,
    evaluated_at       TIMESTAMP NOT NULL
);

-- The last loaded sample of every cumulative counter series, so deltas continue across files.
CREATE TABLE IF NOT EXISTS counter_state (
    service   VARCHAR NOT NULL,
    operation VARCHAR NOT NULL,
    ts        TIMESTAMP NOT NULL,
    total     BIGINT NOT NULL,
    good      BIGINT NOT NULL,
    PRIMARY KEY (service, operation)
);

-- Precomputed ratios (OpenSLO raw metrics): one value in [0, 1] per sample.
CREATE TABLE IF NOT EXISTS raw_ratios (
    ts         TIMESTAMP NOT NULL,
    service    VARCHAR NOT NULL,
    operation  VARCHAR NOT NULL,
    ratio      DOUBLE NOT NULL,
    file_id    INTEGER NOT NULL,
    source_row BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sli_ratio_minute (
    bucket_start TIMESTAMP NOT NULL, service VARCHAR NOT NULL, operation VARCHAR NOT NULL,
    ratio_sum DOUBLE NOT NULL, points BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sli_ratio_hour (
    bucket_start TIMESTAMP NOT NULL, service VARCHAR NOT NULL, operation VARCHAR NOT NULL,
    ratio_sum DOUBLE NOT NULL, points BIGINT NOT NULL
);

-- Burn-rate alert rules evaluated as of a time (SRE Workbook pairs), per SLO objective.
CREATE TABLE IF NOT EXISTS slo_alerts (
    as_of        TIMESTAMP NOT NULL,
    slo          VARCHAR NOT NULL,
    service      VARCHAR NOT NULL,
    objective    VARCHAR NOT NULL,
    severity     VARCHAR NOT NULL,
    long_window  VARCHAR NOT NULL,
    short_window VARCHAR NOT NULL,
    factor       DOUBLE NOT NULL,
    burn_long    DOUBLE,
    burn_short   DOUBLE,
    firing       BOOLEAN NOT NULL
);

-- Alerts and incidents (pipelines/slo/incidents.py). One row per alert episode: a dedup key (SLO, kind,
-- severity) that fires again after resolving gets a new alert_id.
CREATE TABLE IF NOT EXISTS alert_instances (
    alert_id         BIGINT PRIMARY KEY,
    dedup_key        VARCHAR NOT NULL,
    slo              VARCHAR NOT NULL,
    slo_display_name VARCHAR NOT NULL,
    service          VARCHAR NOT NULL,
    objective        VARCHAR NOT NULL,
    kind             VARCHAR NOT NULL,      -- burn_rate | budget | no_data
    severity         VARCHAR NOT NULL,      -- page | ticket | info
    incident_id      BIGINT NOT NULL,
    state            VARCHAR NOT NULL,      -- firing | resolved
    started_at       TIMESTAMP NOT NULL,
    last_seen_at     TIMESTAMP NOT NULL,
    resolved_at      TIMESTAMP,
    resolved_by      VARCHAR,
    title            VARCHAR NOT NULL,
    description      VARCHAR NOT NULL,
    facts            VARCHAR NOT NULL,      -- JSON list of [label, value]
    details          VARCHAR NOT NULL,      -- JSON: burn rates, impact, attribution, correlation
    runbook_url      VARCHAR,
    notify_trigger   BOOLEAN NOT NULL,
    notify_resolve   BOOLEAN NOT NULL,
    notified_level   INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS incidents (
    incident_id      BIGINT PRIMARY KEY,
    service          VARCHAR NOT NULL,
    severity         VARCHAR NOT NULL,
    state            VARCHAR NOT NULL,      -- open | acknowledged | resolved
    title            VARCHAR NOT NULL,
    opened_at        TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    acknowledged_at  TIMESTAMP,
    acknowledged_by  VARCHAR,
    resolved_at      TIMESTAMP,
    resolved_by      VARCHAR,
    escalation_level INTEGER NOT NULL,
    escalated_at     TIMESTAMP,
    severity_since   TIMESTAMP
);
-- Warehouses created before severity_since existed (the column goes last, as in the table above).
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS severity_since TIMESTAMP;

-- Append-only: rows are inserted, never updated or deleted.
CREATE TABLE IF NOT EXISTS incident_events (
    incident_id BIGINT NOT NULL,
    event_at    TIMESTAMP NOT NULL,
    event       VARCHAR NOT NULL,
    actor       VARCHAR NOT NULL,
    alert_id    BIGINT,
    detail      VARCHAR NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);

-- Notifications waiting for or done with delivery, one per (idempotency key, channel).
CREATE TABLE IF NOT EXISTS notification_outbox (
    key          VARCHAR NOT NULL,
    channel      VARCHAR NOT NULL,
    incident_id  BIGINT NOT NULL,
    alert_id     BIGINT NOT NULL,
    action       VARCHAR NOT NULL,
    level        INTEGER NOT NULL,
    purpose      VARCHAR NOT NULL,      -- notify | refresh | remediate
    dry_run      BOOLEAN NOT NULL,
    notification VARCHAR NOT NULL,      -- JSON of the Notification (no secrets: channels hold env names)
    status       VARCHAR NOT NULL,      -- pending | delivered | failed | duplicate | rate_limited | dry_run
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (key, channel)
);

-- Every delivery attempt (append-only).
CREATE TABLE IF NOT EXISTS notification_log (
    key          VARCHAR NOT NULL,
    channel      VARCHAR NOT NULL,
    channel_type VARCHAR NOT NULL,
    attempt      INTEGER NOT NULL,
    attempted_at TIMESTAMP NOT NULL,
    outcome      VARCHAR NOT NULL,
    http_status  INTEGER,
    detail       VARCHAR NOT NULL,
    duration_ms  DOUBLE NOT NULL
);

-- Alert-policy backtests (asset alert_backtest): one row per SLO objective, policy and severity.
CREATE TABLE IF NOT EXISTS alert_backtests (
    as_of                  TIMESTAMP NOT NULL,
    replay_start           TIMESTAMP NOT NULL,
    slo                    VARCHAR NOT NULL,
    objective              VARCHAR NOT NULL,
    policy                 VARCHAR NOT NULL,
    severity               VARCHAR NOT NULL,
    incidents              INTEGER NOT NULL,
    alerts                 INTEGER NOT NULL,
    true_alerts            INTEGER NOT NULL,
    alert_precision        DOUBLE,
    recall                 DOUBLE,
    mean_detection_minutes DOUBLE,
    mean_reset_minutes     DOUBLE,
    pages_per_week         DOUBLE NOT NULL
);

-- Analytics (pipelines/analytics.py): recomputed whole on every run.
-- scale 'log': traffic and latency, analysed on a log scale; seasonal and residual are factors there, and
-- a trend's slope is a relative change per day.
CREATE TABLE IF NOT EXISTS slo_seasonal (
    slo VARCHAR NOT NULL, metric VARCHAR NOT NULL, resolution VARCHAR NOT NULL, scale VARCHAR NOT NULL,
    bucket_start TIMESTAMP NOT NULL,
    observed DOUBLE, trend DOUBLE, seasonal_daily DOUBLE, seasonal_weekly DOUBLE, residual DOUBLE,
    filled BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS slo_trends (
    slo VARCHAR NOT NULL, metric VARCHAR NOT NULL, resolution VARCHAR NOT NULL, scale VARCHAR NOT NULL,
    slope_per_day DOUBLE NOT NULL,
    ci_low DOUBLE NOT NULL, ci_high DOUBLE NOT NULL, p_value DOUBLE NOT NULL, significant BOOLEAN NOT NULL,
    points BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS slo_change_points (
    slo VARCHAR NOT NULL, metric VARCHAR NOT NULL, resolution VARCHAR NOT NULL, changed_at TIMESTAMP NOT NULL,
    level_before DOUBLE NOT NULL, level_after DOUBLE NOT NULL, size DOUBLE NOT NULL, z DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS slo_anomalies (
    slo VARCHAR NOT NULL, metric VARCHAR NOT NULL, bucket_start TIMESTAMP NOT NULL, value DOUBLE,
    score DOUBLE NOT NULL, confidence DOUBLE NOT NULL, is_anomaly BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS slo_forecasts (
    slo VARCHAR NOT NULL, service VARCHAR NOT NULL, objective VARCHAR NOT NULL, as_of TIMESTAMP NOT NULL,
    window_start TIMESTAMP NOT NULL, window_end TIMESTAMP NOT NULL, rolling BOOLEAN NOT NULL,
    seed BIGINT NOT NULL, simulations BIGINT NOT NULL, budget_remaining_now DOUBLE,
    probability_exhausted DOUBLE NOT NULL, probability_already_exhausted DOUBLE NOT NULL,
    remaining_p10 DOUBLE, remaining_p50 DOUBLE, remaining_p90 DOUBLE,
    exhaustion_p10 TIMESTAMP, exhaustion_p50 TIMESTAMP, exhaustion_p90 TIMESTAMP,
    next_window_end TIMESTAMP, next_window_probability_exhausted DOUBLE, incidents_detected BIGINT,
    trend_weight DOUBLE, exhaustion_histogram VARCHAR NOT NULL
);

-- Delivery log for emailed reports (pipelines/report_mail.py): one row per SMTP attempt. A report counts as delivered for its
-- key once a row with outcome 'sent' exists, so a re-run of the same period sends nothing.
-- key: report type / service / period / hash of the sorted recipient addresses.
-- outcome: sent | retryable_error | permanent_error. detail holds the scrubbed MailError text.
CREATE TABLE IF NOT EXISTS report_deliveries (
    key         VARCHAR NOT NULL,
    service     VARCHAR,
    report_type VARCHAR,
    period      VARCHAR,
    recipients  VARCHAR NOT NULL,   -- comma-separated envelope recipients
    message_id  VARCHAR NOT NULL,
    attempt     INTEGER NOT NULL,   -- 1, 2, ... within one send_report call
    outcome     VARCHAR NOT NULL,
    detail      VARCHAR,
    "at"        TIMESTAMP NOT NULL  -- naive UTC (quoted: AT is a keyword in DuckDB)
);

-- Retention (pipelines/slo/retention.py): the cutoff each tier was last cut at. Rows older than the raw
-- cutoff are gone, so a late file reaching before it is quarantined instead of recomputing aggregates
-- from a partial set of raw rows.
CREATE TABLE IF NOT EXISTS retention_watermarks (
    tier       VARCHAR PRIMARY KEY,
    cutoff     TIMESTAMP NOT NULL,
    applied_at TIMESTAMP NOT NULL
);

-- Event ids (optional in event files): identity is (service, event_id); ingestion quarantines a repeat.
-- ALTER keeps warehouses made before it usable; the column goes last, so name the columns when inserting.
ALTER TABLE raw_events ADD COLUMN IF NOT EXISTS event_id VARCHAR;

-- A row reaching before the raw retention cutoff (retention_watermarks, tier 'raw') cannot be loaded:
-- aggregation recomputes a dirty minute from raw rows only, and the minute's other raw rows are deleted.
-- NULL when there is no cutoff. Shared by the events, counts and ratios validators (sql/ingest_validate_*).
CREATE OR REPLACE MACRO sloscope_cutoff_text(cutoff) AS
    CASE WHEN cutoff = date_trunc('day', cutoff) THEN strftime(cutoff, '%Y-%m-%d')
         ELSE strftime(cutoff, '%Y-%m-%dT%H:%M:%SZ') END;
-- The first whole minute at or after a cutoff: minutes before it lost raw rows to retention.
CREATE OR REPLACE MACRO sloscope_minute_ceil(cutoff) AS
    date_trunc('minute', cutoff) + CASE WHEN cutoff > date_trunc('minute', cutoff) THEN INTERVAL 1 MINUTE
                                        ELSE INTERVAL 0 MINUTE END;
CREATE OR REPLACE MACRO sloscope_retention_problem(ts, cutoff) AS
    CASE WHEN date_trunc('minute', ts) < cutoff
         THEN 'timestamp ' || strftime(ts, '%Y-%m-%dT%H:%M:%SZ')
              || CASE WHEN ts < cutoff THEN ' is older than' ELSE ' falls in the minute of' END
              || ' the raw-data retention cutoff ' || sloscope_cutoff_text(cutoff)
              || ' (raw rows before it were deleted; its minute can no longer be recomputed)'
    END;

-- Data presence for completeness: per service and UTC hour, bit m of `minutes` is set when any 1-minute
-- aggregate row of the service exists at minute m of the hour. Kept by sql/rollup_counts.sql with the
-- hourly counts (the same hours, the same transaction); exact unions of minutes over services and any
-- range of minutes come from bit_or and bit_count, without reading the minute tables.
CREATE TABLE IF NOT EXISTS sli_presence_hour (
    bucket_start TIMESTAMP NOT NULL, service VARCHAR NOT NULL, minutes UBIGINT NOT NULL
);
-- Warehouses aggregated before the table existed: fill it once from the minutes they keep.
INSERT INTO sli_presence_hour
SELECT date_trunc('hour', bucket_start), service, bit_or(1::UBIGINT << minute(bucket_start))
FROM sli_counts_minute
WHERE NOT EXISTS (SELECT 1 FROM sli_presence_hour)
GROUP BY ALL;

-- The size and modification time (ns) each landed path had when its content (sha256) was read and found
-- loaded: a path whose size and mtime are unchanged is recognised as loaded without reading it again, so a
-- run over a large landing folder reads only new and changed files. A cache: losing a row only costs a read.
CREATE TABLE IF NOT EXISTS landing_stamps (
    path       VARCHAR PRIMARY KEY,
    size_bytes BIGINT NOT NULL,
    mtime_ns   BIGINT NOT NULL,
    sha256     VARCHAR NOT NULL
);
