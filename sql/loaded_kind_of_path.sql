SELECT schema_kind FROM ingested_files WHERE path = $path AND status = 'loaded' ORDER BY file_id DESC LIMIT 1;
