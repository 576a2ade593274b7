INSERT INTO notification_log VALUES (
    $key, $channel, $channel_type, $attempt, $attempted_at, $outcome, $http_status, $detail, $duration_ms
);
