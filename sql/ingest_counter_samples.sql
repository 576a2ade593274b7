-- The valid cumulative samples of one file, in series order, and the series' last loaded samples.
SELECT _row, ts, service, operation, total, good
FROM validated
WHERE reason IS NULL
ORDER BY service, operation, ts, _row;
