-- The warehouse. Times are naive TIMESTAMPs holding UTC; aggregate tables share one grain:
-- (bucket_start, service, operation, status_code, success) where success is the availability outcome
-- (no 5xx and success not false). Counts-schema rows carry status_code NULL.

CREATE TABLE IF NOT EXISTS ingested_files (
    file_id          INTEGER PRIMARY KEY,
    path             VARCHAR NOT NULL,
    sha256           VARCHAR NOT NULL,
    format           VARCHAR NOT NULL,
    schema_kind      VARCHAR,
    status           VARCHAR NOT NULL,   -- loaded | superseded | failed
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

-- Hourly good/total per SLO indicator, for charts and later models.
CREATE TABLE IF NOT EXISTS slo_hourly (
    slo          VARCHAR NOT NULL,
    bucket_start TIMESTAMP NOT NULL,
    good         BIGINT NOT NULL,
    total        BIGINT NOT NULL
);
