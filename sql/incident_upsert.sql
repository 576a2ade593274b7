INSERT OR REPLACE INTO incidents VALUES (
    $incident_id, $service, $severity, $state, $title, $opened_at, $updated_at, $acknowledged_at,
    $acknowledged_by, $resolved_at, $resolved_by, $escalation_level, $escalated_at, $severity_since
);
