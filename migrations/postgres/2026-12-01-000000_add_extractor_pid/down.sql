ALTER TABLE job_attempts DROP COLUMN extractor_pid;
