SELECT count(*) FROM notification_log WHERE key = $key AND channel = $channel AND outcome = 'delivered';
