DELETE FROM slo_objectives;
INSERT INTO slo_objectives SELECT * FROM new_objectives;
