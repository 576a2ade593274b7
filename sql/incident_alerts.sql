SELECT * FROM alert_instances WHERE incident_id = $incident_id ORDER BY alert_id;
