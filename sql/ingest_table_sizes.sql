SELECT
    (SELECT count(*) FROM raw_events) AS raw_events,
    (SELECT count(*) FROM raw_counts) AS raw_counts,
    (SELECT count(*) FROM quarantine) AS quarantine;
