SELECT slo, objective, long_window || '/' || short_window
FROM slo_alerts
WHERE as_of = (SELECT max(as_of) FROM slo_alerts) AND firing AND severity = 'page'
ORDER BY slo, objective;
