-- One row per time a worker took a document's job: the story an admin reads when a
-- job failed (which worker, when, how it ended, why).
CREATE TABLE job_attempts (
    id TEXT PRIMARY KEY NOT NULL,
    document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    worker_id TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    outcome TEXT,
    error TEXT
);
CREATE INDEX job_attempts_by_document ON job_attempts (document_id, started_at);
CREATE INDEX job_attempts_by_job ON job_attempts (job_id);
