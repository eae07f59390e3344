ALTER TABLE job_attempts DROP COLUMN extractor_cpu_ms;
ALTER TABLE job_attempts DROP COLUMN extractor_peak_memory_kb;
ALTER TABLE job_attempts DROP COLUMN extractor_exit;
ALTER TABLE job_attempts DROP COLUMN extractor_outcome;
