-- How the extractor process of each attempt ended: the outcome kind, its exit status
-- or signal, and what it used (peak resident memory, CPU time).
ALTER TABLE job_attempts ADD COLUMN extractor_outcome TEXT;
ALTER TABLE job_attempts ADD COLUMN extractor_exit TEXT;
ALTER TABLE job_attempts ADD COLUMN extractor_peak_memory_kb BIGINT;
ALTER TABLE job_attempts ADD COLUMN extractor_cpu_ms BIGINT;
