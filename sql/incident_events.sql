SELECT event_at AS at, event, actor, alert_id, detail FROM incident_events
WHERE incident_id = $incident_id ORDER BY event_at, recorded_at;
