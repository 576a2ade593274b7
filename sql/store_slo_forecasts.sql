-- Replace slo_forecasts with this run's rows (registered as new_rows).
DELETE FROM slo_forecasts;
INSERT INTO slo_forecasts SELECT * FROM new_rows;
