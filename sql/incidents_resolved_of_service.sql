-- A service's resolved incidents as labelled windows for backtests.
SELECT opened_at, resolved_at FROM incidents
WHERE service = $service AND state = 'resolved' AND resolved_at IS NOT NULL
ORDER BY opened_at;
