-- The content hash of a file record, when it is the loaded version of the given path.
SELECT sha256 FROM ingested_files WHERE file_id = $file_id AND path = $path AND status = 'loaded';
