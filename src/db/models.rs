//! Rows as Rust values, and the document's lifecycle states.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::schema::{document_chunks, documents, job_attempts};
use crate::queue::NewJob;

/// Where a document is in its life. Stored as text in `documents.queue_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueStatus {
    Queued,
    Processing,
    Completed,
    Failed,
    Cancelled,
}

impl QueueStatus {
    pub const ALL: [QueueStatus; 5] = [
        QueueStatus::Queued,
        QueueStatus::Processing,
        QueueStatus::Completed,
        QueueStatus::Failed,
        QueueStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueStatus::Queued => "queued",
            QueueStatus::Processing => "processing",
            QueueStatus::Completed => "completed",
            QueueStatus::Failed => "failed",
            QueueStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<QueueStatus> {
        QueueStatus::ALL.into_iter().find(|status| status.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, QueueStatus::Completed | QueueStatus::Failed | QueueStatus::Cancelled)
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = documents)]
pub struct Document {
    pub id: String,
    pub user_id: String,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub storage_path: String,
    pub chunk_count: i32,
    pub created_at: NaiveDateTime,
    pub queue_status: String,
    pub job_id: String,
    pub queue_priority: i32,
    pub worker_id: Option<String>,
    pub progress: i32,
    pub stage: Option<String>,
    pub attempts: i32,
    pub error: Option<String>,
    pub queued_at: NaiveDateTime,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
}

impl Document {
    pub fn status(&self) -> QueueStatus {
        QueueStatus::parse(&self.queue_status).unwrap_or(QueueStatus::Queued)
    }

    /// The queue job that processes this document under its current job id.
    pub fn job(&self) -> NewJob {
        NewJob {
            job_id: self.job_id.clone(),
            document_id: self.id.clone(),
            user_id: self.user_id.clone(),
            priority: self.queue_priority,
            content_type: self.content_type.clone(),
            size_bytes: self.size_bytes,
            filename: self.filename.clone(),
        }
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = documents)]
pub struct NewDocument {
    pub id: String,
    pub user_id: String,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub storage_path: String,
    pub queue_status: String,
    pub job_id: String,
    pub queue_priority: i32,
    pub created_at: NaiveDateTime,
    pub queued_at: NaiveDateTime,
}

impl NewDocument {
    /// The queue job that processes this new document.
    pub fn job(&self) -> NewJob {
        NewJob {
            job_id: self.job_id.clone(),
            document_id: self.id.clone(),
            user_id: self.user_id.clone(),
            priority: self.queue_priority,
            content_type: self.content_type.clone(),
            size_bytes: self.size_bytes,
            filename: self.filename.clone(),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = document_chunks)]
pub struct ChunkRow {
    pub document_id: String,
    pub ordinal: i32,
    pub text: String,
    pub page_start: Option<i32>,
    pub page_end: Option<i32>,
    pub char_count: i32,
    pub embedding: Vec<u8>,
}

/// The public JSON shape of a document (DESIGN §5): timestamps in RFC 3339.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentView {
    pub id: String,
    pub job_id: String,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub queue_status: String,
    pub queue_priority: i32,
    pub progress: i32,
    pub stage: Option<String>,
    pub attempts: i32,
    pub error: Option<String>,
    pub worker_id: Option<String>,
    pub chunk_count: i32,
    pub created_at: DateTime<Utc>,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<Document> for DocumentView {
    fn from(d: Document) -> DocumentView {
        DocumentView {
            id: d.id,
            job_id: d.job_id,
            filename: d.filename,
            content_type: d.content_type,
            size_bytes: d.size_bytes,
            sha256: d.sha256,
            queue_status: d.queue_status,
            queue_priority: d.queue_priority,
            progress: d.progress,
            stage: d.stage,
            attempts: d.attempts,
            error: d.error,
            worker_id: d.worker_id,
            chunk_count: d.chunk_count,
            created_at: d.created_at.and_utc(),
            queued_at: d.queued_at.and_utc(),
            started_at: d.started_at.map(|t| t.and_utc()),
            finished_at: d.finished_at.map(|t| t.and_utc()),
        }
    }
}

/// Now, in UTC, truncated to microseconds so a value round-trips through PostgreSQL unchanged.
pub fn now() -> NaiveDateTime {
    use chrono::SubsecRound;
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// One time a worker took a job, and how it ended.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = job_attempts)]
pub struct JobAttempt {
    pub id: String,
    pub document_id: String,
    pub job_id: String,
    pub attempt: i32,
    pub worker_id: String,
    pub started_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    pub outcome: Option<String>,
    pub error: Option<String>,
    /// How this attempt's extractor process ended (`ok`, `memory_limit`, `crash`, …).
    pub extractor_outcome: Option<String>,
    /// Its exit status or signal: "exit 0", "signal 9 (SIGKILL)".
    pub extractor_exit: Option<String>,
    pub extractor_peak_memory_kb: Option<i64>,
    pub extractor_cpu_ms: Option<i64>,
}
