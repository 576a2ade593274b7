DELETE FROM sli_threshold_minute;
DELETE FROM sli_threshold_hour;
DELETE FROM sli_threshold_day;
