-- Event ids of one events file, on the rows sql/ingest_validate_events.sql (or the typed Parquet
-- validation, sql/ingest_validate_parquet.sql) left valid in the temp table `validated`.
-- Identity is (service, event_id). A row's own problems come first; among the rows without one, the
-- first of an id in the file (lowest row) is the one that loads, a later one is a duplicate, and so is an
-- id already in raw_events from another file (every row of such an id names the loaded one).
-- Runs after ingest_supersede, so a changed file's earlier version is gone and never counts against it.
--
-- Duplicates, among the rows valid so far: an id already loaded by another file (every row of it names
-- the loaded one), else a repeat of an earlier row of this file. For a file without ids the joins below
-- have nothing to build on.
UPDATE validated SET reason = d.reason
FROM (
    WITH ids AS (
        SELECT service, event_id, min(_row) AS first_row, count(*) AS occurrences
        FROM validated
        WHERE reason IS NULL AND event_id IS NOT NULL
        GROUP BY service, event_id
    ),
    -- Ids of this file already loaded, each with where the earliest of them came from.
    earlier AS (
        SELECT m.service, m.event_id, coalesce(f.path, 'file ' || m.earliest.file_id) AS path,
               m.earliest.source_row AS source_row
        FROM (
            SELECT e.service, e.event_id, min({'file_id': e.file_id, 'source_row': e.source_row}) AS earliest
            FROM raw_events e
            SEMI JOIN ids k ON k.service = e.service AND k.event_id = e.event_id
            GROUP BY e.service, e.event_id
        ) m
        LEFT JOIN ingested_files f ON f.file_id = m.earliest.file_id  -- always there, unless loaded by hand
    )
    SELECT
        v._row,
        CASE WHEN p.event_id IS NOT NULL
             THEN 'duplicate event_id ''' || v.event_id || ''' for service ''' || v.service
                  || ''' already loaded from ' || p.path || ' row ' || p.source_row
             ELSE 'duplicate event_id ''' || v.event_id || ''' for service ''' || v.service
                  || ''' (first at row ' || r.first_row || ' of this file)'
        END AS reason
    FROM validated v
    LEFT JOIN (SELECT * FROM ids WHERE occurrences > 1) r ON r.service = v.service AND r.event_id = v.event_id
    LEFT JOIN earlier p ON p.service = v.service AND p.event_id = v.event_id
    WHERE v.reason IS NULL AND (p.event_id IS NOT NULL OR r.first_row < v._row)
) d
WHERE validated._row = d._row;
