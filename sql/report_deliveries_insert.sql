INSERT INTO report_deliveries (key, service, report_type, period, recipients, message_id, attempt, outcome, detail, "at")
VALUES ($key, $service, $report_type, $period, $recipients, $message_id, $attempt, $outcome, $detail, $at);
