-- Alert episodes still firing: the incident engine's memory between evaluations.
SELECT * FROM alert_instances WHERE state = 'firing' ORDER BY alert_id;
