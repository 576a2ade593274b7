DELETE FROM slo_alerts WHERE as_of = $as_of;
INSERT INTO slo_alerts
SELECT $as_of, slo, service, objective, severity, long_window, short_window, factor, burn_long, burn_short, firing
FROM new_alerts;
