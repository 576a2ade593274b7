INSERT OR REPLACE INTO alert_instances VALUES (
    $alert_id, $dedup_key, $slo, $slo_display_name, $service, $objective, $kind, $severity, $incident_id,
    $state, $started_at, $last_seen_at, $resolved_at, $resolved_by, $title, $description, $facts, $details,
    $runbook_url, $notify_trigger, $notify_resolve, $notified_level
);
