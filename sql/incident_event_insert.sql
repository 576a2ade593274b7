INSERT INTO incident_events VALUES ($incident_id, $event_at, $event, $actor, $alert_id, $detail, $recorded_at);
