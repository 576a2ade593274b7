-- SLO corrections: periods excluded from error budgets (planned maintenance, known-bad data). Rows are
-- never deleted: removal sets removed_by / removed_at, so the table is the audit trail.
-- Times are naive TIMESTAMPs holding UTC. A recurring correction's occurrences are local wall times in
-- time_zone (see pipelines/slo/corrections.py); start_ts is its first occurrence's start in UTC.
CREATE SEQUENCE IF NOT EXISTS slo_corrections_id_seq START 1;
CREATE TABLE IF NOT EXISTS slo_corrections (
    correction_id    INTEGER PRIMARY KEY DEFAULT nextval('slo_corrections_id_seq'),
    slo              VARCHAR NOT NULL,   -- an SLO name, or '*' for every SLO
    service          VARCHAR,            -- optional: only SLOs of this service
    start_ts         TIMESTAMP NOT NULL,
    end_ts           TIMESTAMP,          -- one-off end (UTC)
    rrule            VARCHAR,            -- RFC 5545 RRULE, as given
    duration_minutes INTEGER,            -- length of each occurrence
    time_zone        VARCHAR NOT NULL,
    reason           VARCHAR NOT NULL,
    added_by         VARCHAR NOT NULL,
    added_at         TIMESTAMP NOT NULL,
    removed_by       VARCHAR,
    removed_at       TIMESTAMP,
    -- Either a one-off window or a recurring rule, never a mix; the Python side validates first, these
    -- keep hand-written rows honest too.
    CHECK ((rrule IS NULL AND end_ts > start_ts AND duration_minutes IS NULL)
        OR (rrule IS NOT NULL AND end_ts IS NULL AND duration_minutes > 0)),
    CHECK ((removed_by IS NULL) = (removed_at IS NULL))
);
