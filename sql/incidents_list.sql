-- Incidents, newest first, with how many of their alerts are firing.
SELECT i.incident_id, i.service, i.severity, i.state, i.title, i.opened_at, i.acknowledged_at,
       i.acknowledged_by, i.resolved_at, i.resolved_by, i.escalation_level,
       count(a.alert_id) FILTER (WHERE a.state = 'firing') AS alerts_firing,
       count(a.alert_id) AS alerts
FROM incidents i
LEFT JOIN alert_instances a USING (incident_id)
WHERE ($states::VARCHAR[] IS NULL OR list_contains($states::VARCHAR[], i.state))
  AND ($service::VARCHAR IS NULL OR i.service = $service::VARCHAR)
  AND ($incident_id::BIGINT IS NULL OR i.incident_id = $incident_id::BIGINT)
GROUP BY ALL
ORDER BY i.incident_id DESC
LIMIT $limit;
