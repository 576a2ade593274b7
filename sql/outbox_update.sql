UPDATE notification_outbox SET status = $status, updated_at = $updated_at WHERE key = $key AND channel = $channel;
