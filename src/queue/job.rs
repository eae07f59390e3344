//! A job as the queue hands it to a worker.

use std::collections::HashMap;

use crate::db::models::Document;
use crate::job_state::{JobState, UnknownJobState};

/// A claimed job: the worker owns it while its `token` matches the one in Redis.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub job_id: String,
    pub document_id: String,
    pub user_id: String,
    pub token: String,
    /// Claims so far, this one included.
    pub attempts: u32,
    pub content_type: String,
    pub size_bytes: u64,
    /// Milliseconds since the epoch.
    pub enqueued_at_ms: i64,
    pub started_at_ms: i64,
}

impl ClaimedJob {
    pub(super) fn from_fields(fields: Vec<String>) -> Option<ClaimedJob> {
        let mut map: HashMap<String, String> = HashMap::new();
        let mut it = fields.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            map.insert(k, v);
        }
        let num = |k: &str| map.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        Some(ClaimedJob {
            job_id: map.get("id")?.clone(),
            document_id: map.get("document_id")?.clone(),
            user_id: map.get("user_id")?.clone(),
            token: map.get("token")?.clone(),
            attempts: num("attempts").max(1) as u32,
            content_type: map.get("content_type").cloned().unwrap_or_default(),
            size_bytes: num("size_bytes").max(0) as u64,
            enqueued_at_ms: num("enqueued_at"),
            started_at_ms: num("started_at"),
        })
    }
}

/// What a job to enqueue carries.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub job_id: String,
    pub document_id: String,
    pub user_id: String,
    pub priority: i32,
    pub content_type: String,
    pub size_bytes: i64,
    /// For the admin view's search.
    pub filename: String,
}

impl NewJob {
    /// The job that processes this document under its current job id.
    pub fn for_document(document: &Document) -> NewJob {
        NewJob {
            job_id: document.job_id.clone(),
            document_id: document.id.clone(),
            user_id: document.user_id.clone(),
            priority: document.queue_priority,
            content_type: document.content_type.clone(),
            size_bytes: document.size_bytes,
            filename: document.filename.clone(),
        }
    }
}

/// Where a failed attempt leaves the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryDecision {
    /// Scheduled again after `delay_ms`.
    Retrying { delay_ms: u64, failures: u32 },
    /// Retries spent: failed for good.
    Failed { failures: u32 },
    /// The worker no longer owns the job; nothing was changed.
    LeaseLost,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// It was waiting (or delayed) and is now cancelled.
    Cancelled,
    /// It is running; its worker has been told and will stop within a second.
    Cancelling,
    /// Redis has no such job (lost, or never enqueued).
    Missing,
    /// It had already finished in this state.
    Finished(JobState),
}

/// What the stalled-job rescuer did with one job.
#[derive(Debug, Clone)]
pub struct RescuedJob {
    pub job_id: String,
    pub document_id: String,
    pub outcome: RescueOutcome,
    pub stalls: u32,
    /// The run that stalled: its worker and its attempt number.
    pub worker_id: String,
    pub attempt: u32,
}

/// Where the rescuer left a job whose lease expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RescueOutcome {
    /// Back in the queue for another worker.
    Requeued,
    /// Stalled too often (`max_stalls`): failed for good.
    Failed,
    /// A cancel was asked while its worker was away: finished cancelled.
    Cancelled,
}

impl RescueOutcome {
    /// From the state the rescue script left the job in.
    pub(super) fn from_redis(state: &str) -> Result<RescueOutcome, UnknownJobState> {
        match JobState::from_redis(state)? {
            JobState::Queued => Ok(RescueOutcome::Requeued),
            JobState::Failed => Ok(RescueOutcome::Failed),
            JobState::Cancelled => Ok(RescueOutcome::Cancelled),
            _ => Err(UnknownJobState(state.to_string())),
        }
    }
}

/// Jobs per state, across all users.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct StateCounts {
    pub queued: u64,
    pub delayed: u64,
    pub processing: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
}

impl StateCounts {
    pub fn by_state(&self) -> [(JobState, u64); 6] {
        [
            (JobState::Queued, self.queued),
            (JobState::Delayed, self.delayed),
            (JobState::Processing, self.processing),
            (JobState::Completed, self.completed),
            (JobState::Failed, self.failed),
            (JobState::Cancelled, self.cancelled),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::ClaimedJob;

    fn fields(pairs: &[(&str, &str)]) -> Vec<String> {
        pairs.iter().flat_map(|(k, v)| [k.to_string(), v.to_string()]).collect()
    }

    const REQUIRED: [(&str, &str); 4] = [("id", "J1"), ("document_id", "D1"), ("user_id", "alice"), ("token", "T1")];

    #[test]
    fn a_claim_reply_becomes_a_job() {
        let mut pairs = REQUIRED.to_vec();
        pairs.extend([
            ("attempts", "2"),
            ("content_type", "application/pdf"),
            ("size_bytes", "4096"),
            ("enqueued_at", "1700000000000"),
            ("started_at", "1700000000500"),
            ("state", "active"),
        ]);
        let job = ClaimedJob::from_fields(fields(&pairs)).unwrap();
        assert_eq!((job.job_id.as_str(), job.document_id.as_str()), ("J1", "D1"));
        assert_eq!((job.user_id.as_str(), job.token.as_str()), ("alice", "T1"));
        assert_eq!((job.attempts, job.content_type.as_str(), job.size_bytes), (2, "application/pdf", 4096));
        assert_eq!((job.enqueued_at_ms, job.started_at_ms), (1_700_000_000_000, 1_700_000_000_500));
    }

    #[test]
    fn without_an_id_owner_or_token_there_is_no_job() {
        for missing in REQUIRED.map(|(k, _)| k) {
            let pairs: Vec<_> = REQUIRED.iter().copied().filter(|(k, _)| *k != missing).collect();
            assert!(ClaimedJob::from_fields(fields(&pairs)).is_none(), "without {missing}");
        }
    }

    #[test]
    fn odd_or_missing_numbers_fall_back_to_safe_values() {
        let mut pairs = REQUIRED.to_vec();
        pairs.extend([("attempts", "0"), ("size_bytes", "-1"), ("enqueued_at", "soon")]);
        let mut flat = fields(&pairs);
        flat.push("dangling-key".into());
        let job = ClaimedJob::from_fields(flat).unwrap();
        assert_eq!(job.attempts, 1, "a claimed job is on its first attempt at least");
        assert_eq!((job.size_bytes, job.enqueued_at_ms, job.started_at_ms), (0, 0, 0));
        assert_eq!(job.content_type, "");
    }
}
