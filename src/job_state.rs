//! The one vocabulary of a job's state. The database row (`documents.queue_status`),
//! the API, the WebSocket events and the admin views use the API name; Redis keeps
//! the job hash's `state` and the per-state sorted sets under the Redis name. This is
//! the only place either name is spelled.

use serde::{Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// Waiting out a retry back-off, or deferred until another job ends (Redis only:
    /// its row says `queued`).
    Delayed,
    Processing,
    Completed,
    Failed,
    Cancelled,
}

/// The OpenAPI schema of a document's `queue_status`: `JobState` without `delayed`,
/// which only Redis and the admin views know.
pub fn document_status_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(JobState::OF_DOCUMENTS.iter().map(|state| state.as_str())))
        .build()
}

/// A state name that is none of ours: stored data from elsewhere, or corrupted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job state `{0}`")]
pub struct UnknownJobState(pub String);

impl JobState {
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Delayed,
        JobState::Processing,
        JobState::Completed,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The states a document row can hold (a delayed job's row is `queued`).
    pub const OF_DOCUMENTS: [JobState; 5] =
        [JobState::Queued, JobState::Processing, JobState::Completed, JobState::Failed, JobState::Cancelled];

    /// Rows still owed work: a worker may take or is running them.
    pub const UNFINISHED: [JobState; 2] = [JobState::Queued, JobState::Processing];

    pub const TERMINAL: [JobState; 3] = [JobState::Completed, JobState::Failed, JobState::Cancelled];

    /// The name the API, the events and the database use.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Delayed => "delayed",
            JobState::Processing => "processing",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// The name of the job's state in Redis (its hash field and its sorted set).
    pub fn redis_name(self) -> &'static str {
        match self {
            JobState::Queued => "waiting",
            JobState::Processing => "active",
            other => other.as_str(),
        }
    }

    pub fn parse(name: &str) -> Result<JobState, UnknownJobState> {
        JobState::ALL.into_iter().find(|s| s.as_str() == name).ok_or_else(|| UnknownJobState(name.to_string()))
    }

    pub fn from_redis(name: &str) -> Result<JobState, UnknownJobState> {
        JobState::ALL.into_iter().find(|s| s.redis_name() == name).ok_or_else(|| UnknownJobState(name.to_string()))
    }

    /// Finished for good: nothing changes it again but an admin's retry.
    pub fn is_terminal(self) -> bool {
        JobState::TERMINAL.contains(&self)
    }

    pub fn names(states: &[JobState]) -> Vec<&'static str> {
        states.iter().map(|s| s.as_str()).collect()
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with a name as the API spells it (`state == "completed"`).
impl PartialEq<&str> for JobState {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

/// How the `documents.queue_status` column reads and writes it.
impl TryFrom<String> for JobState {
    type Error = UnknownJobState;

    fn try_from(name: String) -> Result<JobState, UnknownJobState> {
        JobState::parse(&name)
    }
}

impl From<JobState> for String {
    fn from(state: JobState) -> String {
        state.as_str().to_string()
    }
}

impl Serialize for JobState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_both_names() {
        for state in JobState::ALL {
            assert_eq!(JobState::parse(state.as_str()), Ok(state));
            assert_eq!(JobState::from_redis(state.redis_name()), Ok(state));
        }
    }

    #[test]
    fn an_unknown_name_is_an_error_not_a_default() {
        assert_eq!(JobState::parse("waiting"), Err(UnknownJobState("waiting".into())));
        assert_eq!(JobState::from_redis("queued"), Err(UnknownJobState("queued".into())));
        assert!(JobState::parse("").is_err());
    }

    #[test]
    fn only_completed_failed_and_cancelled_are_terminal() {
        let terminal: Vec<JobState> = JobState::ALL.into_iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(terminal, JobState::TERMINAL);
    }
}
