//! Rows as Rust values.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::schema::{document_chunks, documents, job_attempts};
use crate::job_state::JobState;

/// A document's row: the file's facts, and where its processing stands.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
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
    /// Stored as its API name; a name that is none of ours fails the query.
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub queue_status: JobState,
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
    /// The settings its chunks were made with (`processing::Pipeline` fingerprints
    /// them); None until they are stored.
    pub settings_fingerprint: Option<String>,
    /// The document whose chunks were copied instead of processing this one again.
    pub reused_from: Option<String>,
    /// What its reading had to leave out (set when it completes).
    pub warning: Option<String>,
}

/// What a document row keeps of its stored file.
#[derive(Debug, Clone)]
pub struct FileFacts {
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    /// Where the file is kept, relative to the storage root.
    pub storage_path: String,
}

impl Document {
    /// A new document as an upload creates it: queued under a fresh job id, with
    /// nothing done yet.
    pub fn queued(id: String, user_id: &str, file: FileFacts, priority: i32, created_at: NaiveDateTime) -> Document {
        Document {
            id,
            user_id: user_id.to_string(),
            filename: file.filename,
            content_type: file.content_type,
            size_bytes: file.size_bytes,
            sha256: file.sha256,
            storage_path: file.storage_path,
            chunk_count: 0,
            created_at,
            queue_status: JobState::Queued,
            job_id: ulid::Ulid::generate().to_string(),
            queue_priority: priority,
            worker_id: None,
            progress: 0,
            stage: None,
            attempts: 0,
            error: None,
            queued_at: created_at,
            started_at: None,
            finished_at: None,
            settings_fingerprint: None,
            reused_from: None,
            warning: None,
        }
    }
}

/// `None` is written as NULL, not DEFAULT, so many rows go in one INSERT on SQLite too.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = document_chunks, treat_none_as_default_value = false)]
pub struct ChunkRow {
    pub document_id: String,
    pub ordinal: i32,
    pub text: String,
    pub page_start: Option<i32>,
    pub page_end: Option<i32>,
    pub char_count: i32,
    pub embedding: Vec<u8>,
}

/// The public JSON shape of a document: timestamps in RFC 3339.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DocumentView {
    pub id: String,
    pub job_id: String,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    #[schema(schema_with = crate::job_state::document_status_schema)]
    pub queue_status: JobState,
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
    /// Set when this upload's content was already processed (same bytes, same
    /// settings): the id of the caller's document its chunks were copied from (null
    /// when that document is another user's, under `processing.dedup_scope = "global"`).
    pub reused_from: Option<String>,
    /// Set when the document completed without part of its content: for example PDF
    /// pages with no text layer while OCR is unavailable. Says what was left out.
    pub warning: Option<String>,
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
            reused_from: d.reused_from,
            warning: d.warning,
        }
    }
}

/// Now, in UTC, truncated to microseconds so a value round-trips through PostgreSQL unchanged.
pub fn now() -> NaiveDateTime {
    use chrono::SubsecRound;
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// One time a worker took a job, and how it ended.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = job_attempts)]
pub struct JobAttempt {
    pub id: String,
    pub document_id: String,
    pub job_id: String,
    pub attempt: i32,
    pub worker_id: String,
    #[serde(serialize_with = "as_utc")]
    pub started_at: NaiveDateTime,
    #[serde(serialize_with = "as_utc_if_some")]
    pub finished_at: Option<NaiveDateTime>,
    pub outcome: Option<String>,
    pub error: Option<String>,
    /// How this attempt's extractor process ended (`ok`, `memory_limit`, `crash`, …).
    pub extractor_outcome: Option<String>,
    /// Its exit status or signal: "exit 0", "signal 9 (SIGKILL)".
    pub extractor_exit: Option<String>,
    pub extractor_peak_memory_kb: Option<i64>,
    pub extractor_cpu_ms: Option<i64>,
    pub extractor_pid: Option<i64>,
}

/// A stored time, which is UTC, in RFC 3339 with its zone: the columns hold none.
fn as_utc<S: serde::Serializer>(time: &NaiveDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&time.and_utc(), serializer)
}

fn as_utc_if_some<S: serde::Serializer>(time: &Option<NaiveDateTime>, serializer: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&time.map(|t| t.and_utc()), serializer)
}
