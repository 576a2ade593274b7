-- A notification already queued under the same idempotency key and channel is left as it is.
INSERT INTO notification_outbox VALUES (
    $key, $channel, $incident_id, $alert_id, $action, $level, $purpose, $dry_run, $notification, 'pending',
    $created_at, $created_at
) ON CONFLICT DO NOTHING;
