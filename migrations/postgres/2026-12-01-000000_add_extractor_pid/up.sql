-- Which process read the attempt's document: one process may read several of its
-- owner's documents in a row, and kernel logs (the OOM killer) name processes by pid.
ALTER TABLE job_attempts ADD COLUMN extractor_pid BIGINT;
