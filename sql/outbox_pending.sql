SELECT key, channel, purpose, dry_run, notification
FROM notification_outbox
WHERE status = 'pending'
ORDER BY created_at, incident_id, alert_id, level, key, channel;
