SELECT file_id, path, status FROM ingested_files WHERE sha256 = $sha ORDER BY file_id;
