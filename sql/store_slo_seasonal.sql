-- Replace slo_seasonal with this run's rows (registered as new_rows).
DELETE FROM slo_seasonal;
INSERT INTO slo_seasonal SELECT * FROM new_rows;
