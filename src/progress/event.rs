//! The events a user's WebSocket receives (README, "Progress over WebSocket"): one JSON object per frame with
//! `type`, `document_id`, `job_id`, `ts` (ms since the epoch, when produced) and a
//! per-user increasing `seq` (stamped by Redis when published).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::job_state::JobState;

/// An event frame: `type` is one of document.queued, document.progress,
/// document.completed, document.failed, document.cancelled, queue.position; the other
/// fields depend on it (queue_status, queue_position and position, progress, stage, chunk_count,
/// reused_from, error, will_retry, attempt, eta_seconds; ocr_pages_done and ocr_pages
/// while OCR runs).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    pub user_id: String,
    pub document_id: String,
    pub job_id: String,
    pub ts: i64,
    #[serde(default)]
    pub seq: u64,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

/// Whose document an event is about.
#[derive(Debug, Clone)]
pub struct Subject {
    pub user_id: String,
    pub document_id: String,
    pub job_id: String,
}

impl Subject {
    pub fn new(user_id: &str, document_id: &str, job_id: &str) -> Subject {
        Subject { user_id: user_id.into(), document_id: document_id.into(), job_id: job_id.into() }
    }

    fn event(&self, kind: &str, data: Value) -> Event {
        Event {
            kind: kind.to_string(),
            user_id: self.user_id.clone(),
            document_id: self.document_id.clone(),
            job_id: self.job_id.clone(),
            ts: chrono::Utc::now().timestamp_millis(),
            seq: 0,
            data: match data {
                Value::Object(map) => map,
                _ => Map::new(),
            },
        }
    }

    /// The position goes out twice: as `queue_position`, its name in the REST API and
    /// the snapshot, and as `position`, the name clients written before it read.
    pub fn queued(&self, position: Option<u64>) -> Event {
        self.event(
            "document.queued",
            json!({ "queue_status": JobState::Queued, "queue_position": position, "position": position }),
        )
    }

    pub fn progress(&self, progress: i32, stage: &str) -> Event {
        self.event(
            "document.progress",
            json!({ "queue_status": JobState::Processing, "progress": progress, "stage": stage }),
        )
    }

    /// Progress while OCR runs: `ocr_pages_done` of `ocr_pages` pages recognised.
    pub fn ocr_progress(&self, progress: i32, stage: &str, done: u32, total: u32) -> Event {
        self.event(
            "document.progress",
            json!({
                "queue_status": JobState::Processing,
                "progress": progress,
                "stage": stage,
                "ocr_pages_done": done,
                "ocr_pages": total,
            }),
        )
    }

    /// `reused_from`: the owner's document whose chunks were copied (null when processed,
    /// or copied from another user's).
    pub fn completed(&self, chunk_count: i32, reused_from: Option<&str>, warning: Option<&str>) -> Event {
        self.event(
            "document.completed",
            json!({
                "queue_status": JobState::Completed, "progress": 100, "chunk_count": chunk_count,
                "reused_from": reused_from, "warning": warning,
            }),
        )
    }

    pub fn failed(&self, error: &str, will_retry: bool, attempt: u32) -> Event {
        let status = if will_retry { JobState::Queued } else { JobState::Failed };
        self.event(
            "document.failed",
            json!({ "queue_status": status, "error": error, "will_retry": will_retry, "attempt": attempt }),
        )
    }

    pub fn cancelled(&self) -> Event {
        self.event("document.cancelled", json!({ "queue_status": JobState::Cancelled }))
    }

    /// The position under both names, as in `queued`.
    pub fn position(&self, position: u64, eta_seconds: Option<f64>) -> Event {
        self.event(
            "queue.position",
            json!({ "queue_position": position, "position": position, "eta_seconds": eta_seconds }),
        )
    }
}
