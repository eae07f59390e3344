//! Job-level operations shared by the admin API and the dashboard: search, the whole
//! story of one job, retry, cancel, clean.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::db::models::{Document, DocumentView, JobAttempt};
use crate::db::{attempts, documents};
use crate::documents::cancel_document;
use crate::error::AppError;
use crate::job_state::JobState;
use crate::queue::{JobRecord, NewJob};
use crate::web::{comparable_with_stored, AppState};

/// How many job ids one search looks at, at most, per state.
const SCAN_LIMIT: usize = 20_000;
pub const DEFAULT_PAGE: usize = 50;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobSearch {
    pub state: Option<String>,
    pub user: Option<String>,
    pub q: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<usize>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobPage {
    pub jobs: Vec<JobRecord>,
    pub next_cursor: Option<usize>,
}

/// Lists jobs by state, user, and a search term matching part of the filename, or the
/// document id, job id or user id exactly.
pub async fn search(state: &AppState, search: &JobSearch) -> Result<JobPage, AppError> {
    let states: Vec<JobState> = match search.state.as_deref().filter(|s| !s.is_empty()) {
        Some(wanted) => vec![JobState::parse(wanted).map_err(|err| {
            AppError::BadRequest(format!("{err}; use one of {}", JobState::names(&JobState::ALL).join(", ")))
        })?],
        None => JobState::ALL.to_vec(),
    };
    let limit = search.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=500).contains(&limit) {
        return Err(AppError::BadRequest("`limit` must be between 1 and 500".into()));
    }
    let mut ids = Vec::new();
    for job_state in states {
        ids.extend(state.queue.job_ids_in_state(job_state, SCAN_LIMIT).await?);
    }
    let records = state.queue.job_records(&ids).await?;
    let user = search.user.as_deref().filter(|u| !u.is_empty());
    let needle = search.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(str::to_lowercase);
    let matching: Vec<JobRecord> = records
        .into_iter()
        .filter(|job| user.is_none_or(|u| job.user_id == u))
        .filter(|job| {
            needle.as_deref().is_none_or(|q| {
                job.filename.to_lowercase().contains(q)
                    || job.job_id.eq_ignore_ascii_case(q)
                    || job.document_id.eq_ignore_ascii_case(q)
                    || job.user_id.to_lowercase() == q
            })
        })
        .collect();
    let start = search.cursor.unwrap_or(0).min(matching.len());
    let end = (start + limit).min(matching.len());
    Ok(JobPage { next_cursor: (end < matching.len()).then_some(end), jobs: matching[start..end].to_vec() })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobStory {
    pub job_id: String,
    /// What Redis still holds of the job (gone once retention removed it).
    pub queue: Option<JobRecord>,
    pub document: DocumentView,
    pub attempts: Vec<JobAttempt>,
}

async fn document_of_job(state: &AppState, job_id: &str) -> Result<Document, AppError> {
    if !comparable_with_stored(job_id) {
        return Err(AppError::NotFound("no such job".into()));
    }
    let id = job_id.to_string();
    state
        .db
        .run(move |conn| documents::find_by_job(conn, &id))
        .await?
        .ok_or_else(|| AppError::NotFound("no such job".into()))
}

pub async fn story(state: &AppState, job_id: &str) -> Result<JobStory, AppError> {
    let document = document_of_job(state, job_id).await?;
    let doc_id = document.id.clone();
    let history = state.db.run(move |conn| attempts::for_document(conn, &doc_id)).await?;
    let queue = state.queue.job_records(&[job_id.to_string()]).await?.pop();
    Ok(JobStory { job_id: job_id.to_string(), queue, document: document.into(), attempts: history })
}

/// Sends a finished job's document round again under a new job id.
pub async fn retry(state: &AppState, job_id: &str) -> Result<(DocumentView, Option<u64>), AppError> {
    let document = document_of_job(state, job_id).await?;
    if !document.queue_status.is_terminal() {
        return Err(AppError::Conflict(format!(
            "the job is {}; only a finished job can be retried",
            document.queue_status
        )));
    }
    let new_job_id = ulid::Ulid::generate().to_string();
    let (doc_id, new_id) = (document.id.clone(), new_job_id.clone());
    state.db.run(move |conn| documents::requeue_with_new_job(conn, &doc_id, &new_id)).await?;
    state.queue.forget_job(job_id).await?;
    let job = NewJob { job_id: new_job_id, ..NewJob::for_document(&document) };
    let jobs = [job];
    let positions = state.queue.enqueue_before_announcing(&jobs).await?;
    state.events.announce_enqueued(&jobs, &positions).await;
    let position = positions.into_iter().next().flatten();
    let id = document.id.clone();
    let document = state
        .db
        .run(move |conn| documents::find(conn, &id))
        .await?
        .ok_or_else(|| AppError::NotFound("no such job".into()))?;
    Ok((document.into(), position))
}

/// Retries every failed job; returns how many.
pub async fn retry_all_failed(state: &AppState) -> Result<usize, AppError> {
    let failed = state.db.run(|conn| documents::job_ids_with_status(conn, JobState::Failed, 10_000)).await?;
    let mut retried = 0;
    for job_id in failed {
        match retry(state, &job_id).await {
            Ok(_) => retried += 1,
            Err(AppError::Conflict(_) | AppError::NotFound(_)) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(retried)
}

pub async fn cancel(state: &AppState, job_id: &str) -> Result<DocumentView, AppError> {
    let document = document_of_job(state, job_id).await?;
    Ok(cancel_document(&state.db, &state.queue, &state.events, document).await?.into())
}

/// Removes finished jobs of `finished_state` (by default completed) older than
/// `older_than` (by default the configured retention age) from the queue's records;
/// the documents themselves stay. Returns the removed job ids.
pub async fn clean(
    state: &AppState,
    finished_state: Option<&str>,
    older_than: Option<Duration>,
) -> Result<Vec<String>, AppError> {
    let finished = match finished_state.map(JobState::parse) {
        None => JobState::Completed,
        Some(Ok(finished)) if finished.is_terminal() => finished,
        _ => {
            return Err(AppError::BadRequest(format!(
                "cannot clean `{}`; use {}",
                finished_state.unwrap_or_default(),
                JobState::names(&JobState::TERMINAL).join(", ")
            )))
        }
    };
    let retention = &state.config.document_queue;
    let default_age = match finished {
        JobState::Failed => retention.retention_failed_age_secs,
        _ => retention.retention_completed_age_secs,
    };
    let older_than = older_than.unwrap_or(Duration::from_secs(default_age));
    Ok(state.queue.clean(finished, older_than, u64::MAX).await?)
}

/// `older_than` as the API takes it: seconds, or 30s / 15m / 24h / 7d; 0 = all;
/// absent = the configured retention age.
pub fn parse_age(text: Option<&str>) -> Result<Option<Duration>, AppError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some("0") => Ok(Some(Duration::ZERO)),
        Some(text) => crate::auth::parse_ttl(text).map(Some).ok_or_else(|| {
            AppError::BadRequest(format!(
                "`older_than` {text:?}: use seconds or 30s, 15m, 24h, 7d, at most 100 years (36500d)"
            ))
        }),
    }
}
