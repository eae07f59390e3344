-- The queue's state lives on the row: the database is the source of truth.
ALTER TABLE documents ADD COLUMN queue_status TEXT NOT NULL DEFAULT 'queued';
ALTER TABLE documents ADD COLUMN job_id TEXT NOT NULL DEFAULT '';
ALTER TABLE documents ADD COLUMN queue_priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE documents ADD COLUMN worker_id TEXT;
ALTER TABLE documents ADD COLUMN progress INTEGER NOT NULL DEFAULT 0;
ALTER TABLE documents ADD COLUMN stage TEXT;
ALTER TABLE documents ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE documents ADD COLUMN error TEXT;
ALTER TABLE documents ADD COLUMN queued_at TIMESTAMP NOT NULL DEFAULT '1970-01-01 00:00:00';
ALTER TABLE documents ADD COLUMN started_at TIMESTAMP;
ALTER TABLE documents ADD COLUMN finished_at TIMESTAMP;

-- Rows from before the queue were processed inside the upload request: those with
-- chunks are done, the others still need processing. Their job ids are filled in by
-- the application (ULIDs), see db::documents::backfill_job_ids.
UPDATE documents SET
    queue_status = CASE WHEN chunk_count > 0 THEN 'completed' ELSE 'queued' END,
    progress = CASE WHEN chunk_count > 0 THEN 100 ELSE 0 END,
    queued_at = created_at,
    finished_at = CASE WHEN chunk_count > 0 THEN created_at END;

CREATE INDEX documents_by_user_status ON documents (user_id, queue_status, id);
CREATE INDEX documents_by_status ON documents (queue_status, id);
CREATE INDEX documents_by_job ON documents (job_id);
