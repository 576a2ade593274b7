SELECT (SELECT coalesce(max(alert_id), 0) + 1 FROM alert_instances) AS next_alert_id,
       (SELECT coalesce(max(incident_id), 0) + 1 FROM incidents) AS next_incident_id;
