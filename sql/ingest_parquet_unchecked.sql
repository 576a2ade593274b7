-- Deferred rows the text validation did not return (none, unless the two validations disagree on rows).
SELECT count(*) FROM validated WHERE reason = 'deferred';
