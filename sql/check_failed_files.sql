SELECT path, error FROM ingested_files WHERE status = 'failed' ORDER BY file_id;
