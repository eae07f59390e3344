//! The rollback switch (`processing.mode = "inline"`): process a document inside the
//! upload request with the same Processor, as before the queue existed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::db::models::Document;
use crate::db::{documents, Db, DbError};
use crate::job_state::JobState;
use crate::processing::processor::{JobContext, ProcessError, Processed, Processor};
use crate::processing::step_times::StepTimes;

/// How often a deferred document (an identical one in flight) is tried again.
const DEFERRED_POLL: Duration = Duration::from_millis(100);

pub async fn process_inline(db: &Db, processor: &Arc<dyn Processor>, document: Document) -> Result<(), DbError> {
    let worker_id = format!("{}:inline", super::worker_id(0));
    let (doc_id, job_id) = (document.id.clone(), document.job_id.clone());
    let (id, job) = (doc_id.clone(), job_id.clone());
    let Some(document) = db.run(move |conn| documents::mark_processing(conn, &id, &job, &worker_id, 1)).await? else {
        return Ok(());
    };
    let (_cancel, never_cancelled) = watch::channel(None);
    let outcome = loop {
        // The rollback switch keeps no worker figures: its step times go nowhere.
        let context = JobContext::new(document.clone(), 1, Arc::new(|_| {}), never_cancelled.clone(), StepTimes::new());
        match tokio::spawn(processor.process(context)).await {
            // No queue to wait in: the request waits for the identical document.
            Ok(Err(ProcessError::Deferred { .. })) => tokio::time::sleep(DEFERRED_POLL).await,
            Ok(outcome) => break outcome,
            Err(_) => break Err(ProcessError::Transient("the processor crashed".into())),
        }
    };
    let outcome = outcome.map(Processed::bounded).map_err(ProcessError::bounded);
    db.run(move |conn| {
        match outcome {
            Ok(processed) => {
                documents::mark_completed(conn, &doc_id, &job_id, processed.chunk_count, processed.warning.as_deref())?
            }
            Err(err) => documents::mark_ended(conn, &doc_id, &job_id, JobState::Failed, Some(&err.to_string()))?,
        };
        Ok(())
    })
    .await
}
