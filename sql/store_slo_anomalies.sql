-- Replace slo_anomalies with this run's rows (registered as new_rows).
DELETE FROM slo_anomalies;
INSERT INTO slo_anomalies SELECT * FROM new_rows;
