-- Other SLOs' alert episodes overlapping [$start, $end): the correlation shown with an alert.
SELECT DISTINCT slo, severity, kind
FROM alert_instances
WHERE slo <> $slo AND started_at < $end AND (resolved_at IS NULL OR resolved_at > $start)
ORDER BY slo, severity, kind;
