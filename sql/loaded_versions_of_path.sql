SELECT count(*) FROM ingested_files WHERE path = $path AND status = 'loaded';
