SELECT
    count(*) FILTER (WHERE reason IS NULL)     AS rows_loaded,
    count(*) FILTER (WHERE reason IS NOT NULL) AS rows_quarantined,
    min(ts) FILTER (WHERE reason IS NULL)      AS min_ts,
    max(ts) FILTER (WHERE reason IS NULL)      AS max_ts
FROM validated;
