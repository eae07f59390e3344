//! Cancelling a document's processing. Queued: cancelled at once. Running: its worker
//! is told and stops within a second; this waits briefly for it to confirm. Finished:
//! refused.

use std::time::Duration;

use crate::db::models::Document;
use crate::db::{documents, Db, DbError};
use crate::job_state::JobState;
use crate::progress::{Publisher, Subject};
use crate::queue::{CancelOutcome, Queue, QueueError};

/// How long a cancel of a running job waits for the worker to confirm.
const CONFIRM_WAIT: Duration = Duration::from_secs(2);
const CONFIRM_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("the document is already {0}")]
    AlreadyFinished(JobState),
    /// Deleted while the cancel was under way.
    #[error("the document no longer exists")]
    Gone,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Cancels the document's job and returns the row as it stands after: `cancelled`, or
/// still `processing` when its worker has not confirmed within the wait.
pub async fn cancel_document(
    db: &Db,
    queue: &Queue,
    events: &Publisher,
    document: Document,
) -> Result<Document, CancelError> {
    if document.queue_status.is_terminal() {
        return Err(CancelError::AlreadyFinished(document.queue_status));
    }
    // A cancel that cannot reach the queue changes nothing: marking only the row would
    // leave a running job running, and its end would then contradict the row.
    match queue.cancel(&document.job_id).await? {
        CancelOutcome::Cancelled | CancelOutcome::Missing => {
            if mark_cancelled(db, &document).await? {
                let subject = Subject::new(&document.user_id, &document.id, &document.job_id);
                events.announce(subject.cancelled()).await;
            }
        }
        CancelOutcome::Cancelling => {
            let deadline = tokio::time::Instant::now() + CONFIRM_WAIT;
            while tokio::time::Instant::now() < deadline {
                tokio::time::sleep(CONFIRM_POLL).await;
                if reload(db, &document.id).await?.queue_status.is_terminal() {
                    break;
                }
            }
        }
        CancelOutcome::Finished(state) => return Err(CancelError::AlreadyFinished(state)),
    }
    let document = reload(db, &document.id).await?;
    match document.queue_status {
        // The job ended on its own while its worker had not yet seen the cancel.
        state @ (JobState::Completed | JobState::Failed) => Err(CancelError::AlreadyFinished(state)),
        _ => Ok(document),
    }
}

async fn mark_cancelled(db: &Db, document: &Document) -> Result<bool, DbError> {
    let (id, job_id) = (document.id.clone(), document.job_id.clone());
    db.run(move |conn| documents::mark_ended(conn, &id, &job_id, JobState::Cancelled, None)).await
}

async fn reload(db: &Db, id: &str) -> Result<Document, CancelError> {
    let id = id.to_string();
    db.run(move |conn| documents::find(conn, &id)).await?.ok_or(CancelError::Gone)
}
