//! Running one claimed job from start to end: mark the row, run the processor under
//! watch (cancel, lease loss, timeout, panic), then settle the outcome in Redis first
//! (where the lock token is checked) and in the database second.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::WorkerDeps;
use crate::db::attempts::{self, AttemptOutcome};
use crate::db::documents;
use crate::job_state::JobState;
use crate::processing::processor::{bounded_message, CancelReason, JobContext, ProcessError, Processed};
use crate::processing::step_times::Step;
use crate::progress::pump::spawn_pump;
use crate::progress::Subject;
use crate::queue::{ClaimedJob, RetryDecision};

/// How long a processor that ignores its cancellation check gets before it is dropped.
const CANCEL_GRACE: Duration = Duration::from_millis(800);
/// How long a deferred job waits at most for the end that should wake it. Every end
/// wakes it (a holder whose process died is rescued and ends later), so this only
/// bounds a missed wake; it is long, since each round costs a claim and two row writes.
const DEFER_FALLBACK: Duration = Duration::from_secs(60);
/// A running job's row takes its progress at most this often (REST reads it; the
/// snapshot reads the live figure from Redis).
const PROGRESS_ROW_INTERVAL: Duration = Duration::from_secs(1);

/// The rest of a job's ending (its row, then its event), for the worker's next job to
/// start: see `run_job`.
pub type Finishing = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How a run ended: the worker's next job, when ending this one claimed it, and the
/// rest of this one's ending, to run beside that job.
pub struct RunEnded {
    pub next_job: Option<ClaimedJob>,
    pub finishing: Option<Finishing>,
}

/// Runs `job` to its end. With `claim_next`, ending it also claims the worker's next
/// job in the same round trip to Redis; that job is returned, for the worker to run,
/// and it starts while this job's row is written (a job's time runs from its claim).
/// `earlier` is the previous job's `finishing`: it starts once this job's start is on
/// its way to the database, and is awaited before this job's row is written again.
pub async fn run_job(
    deps: WorkerDeps,
    worker_id: String,
    job: ClaimedJob,
    cancel: watch::Receiver<Option<CancelReason>>,
    claim_next: bool,
    earlier: Option<Finishing>,
) -> RunEnded {
    let process = super::process_id();
    let next = claim_next.then_some((worker_id.as_str(), process.as_str()));
    let (doc_id, job_id, attempts) = (job.document_id.clone(), job.job_id.clone(), job.attempts as i32);
    let worker = worker_id.clone();
    // The row writes of a job go through the group commit (db::Db::write): workers'
    // writes of the same moment share one transaction. The start need not wait for the
    // disk: lost in a crash of the database server, the row says `queued` and the job
    // runs again; the job's later, durable writes flush it first.
    let start_row = std::time::Instant::now();
    let started = deps.db.write_async_commit(move |conn| {
        let document = documents::mark_processing(conn, &doc_id, &job_id, &worker, attempts)?;
        if document.is_some() {
            attempts::record_start(conn, &doc_id, &job_id, attempts, &worker)?;
        }
        Ok(document)
    });
    // The previous job's row write starts after this one's is handed to the writer
    // (Db::write hands it over at the call): started first, it would often take the
    // writer first, and this job, whose every step waits for its start, would wait for
    // both commits.
    let earlier = earlier.map(tokio::spawn);
    let read_ahead = deps.processor.read_ahead(&job, cancel.clone());
    let started = started.await;
    deps.metrics.steps().took(Step::StartRow, start_row);
    let document = match started {
        Ok(Some(document)) => document,
        Ok(None) => {
            // Deleted or cancelled while it waited: nothing to do.
            log::info!("job {} dropped: its document is gone or finished", job.job_id);
            let ended = deps.queue.end_job_and_claim(&job, JobState::Cancelled, "the document no longer exists", next);
            let next_job = ended.await.ok().and_then(|(_, next_job)| next_job);
            return RunEnded { next_job, finishing: earlier.map(awaiting) };
        }
        Err(err) => {
            log::warn!("job {}: database unavailable at start: {err}", job.job_id);
            let outcome = Outcome::Failed(ProcessError::Transient("the database was unavailable".into()));
            return settle(&deps, &job, &worker_id, outcome, next, [earlier, None]).await;
        }
    };

    let (progress, pump) = {
        let (db, events) = (deps.db.clone(), deps.events.clone());
        let subject = subject_of(&job);
        let row_written = std::sync::Arc::new(std::sync::Mutex::new(tokio::time::Instant::now()));
        spawn_pump(deps.config.progress.max_events_per_sec, move |updates| {
            let (db, events, subject, row_written) = (db.clone(), events.clone(), subject.clone(), row_written.clone());
            async move {
                // The events also record the progress on the job in Redis (one script
                // for them all), where snapshots read it: the row is written at most
                // once a second, so a short job writes no progress rows at all.
                let progress_events: Vec<_> = updates
                    .iter()
                    .map(|update| {
                        let (percent, stage) = (i32::from(update.percent), update.stage.as_str());
                        match update.ocr_pages {
                            Some(pages) => subject.ocr_progress(percent, stage, pages.done, pages.total),
                            None => subject.progress(percent, stage),
                        }
                    })
                    .collect();
                events.announce_all(&progress_events).await;
                let Some(update) = updates.last() else { return };
                let (percent, stage) = (i32::from(update.percent), update.stage.as_str());
                let due = {
                    let mut last = row_written.lock().unwrap_or_else(|e| e.into_inner());
                    let due = last.elapsed() >= PROGRESS_ROW_INTERVAL;
                    if due {
                        *last = tokio::time::Instant::now();
                    }
                    due
                };
                if due {
                    let (doc_id, job_id) = (subject.document_id.clone(), subject.job_id.clone());
                    let written = db
                        .write_async_commit(move |conn| {
                            documents::update_progress(conn, &doc_id, &job_id, percent, stage)
                        })
                        .await;
                    if let Err(err) = written {
                        log::warn!("progress not saved: {err}");
                    }
                }
            }
        })
    };
    let context = JobContext::new(document, job.attempts, progress, cancel.clone(), deps.metrics.steps().clone())
        .with_read_ahead(read_ahead);
    let outcome = supervise(&deps, context, cancel).await;
    settle(&deps, &job, &worker_id, outcome, next, [earlier, Some(pump)]).await
}

/// Runs the processor in a task of its own, so a panic is caught and a hung or
/// cancelled processor can be dropped.
async fn supervise(deps: &WorkerDeps, context: JobContext, cancel: watch::Receiver<Option<CancelReason>>) -> Outcome {
    let timeout = deps.config.document_queue.job_timeout();
    let mut task = tokio::spawn(deps.processor.process(context));
    let mut cancel_requested = cancel.clone();
    let joined = tokio::select! {
        joined = &mut task => joined,
        _ = cancel_requested.wait_for(|reason| reason.is_some()) => {
            match tokio::time::timeout(CANCEL_GRACE, &mut task).await {
                Ok(joined) => joined,
                Err(_) => {
                    task.abort();
                    return Outcome::Cancelled(cancel.borrow().unwrap_or(CancelReason::Requested));
                }
            }
        }
        _ = tokio::time::sleep(timeout) => {
            task.abort();
            return Outcome::Failed(ProcessError::Transient(format!(
                "processing took longer than {} s and was stopped",
                timeout.as_secs()
            )));
        }
    };
    let outcome = match joined {
        Ok(outcome) => outcome,
        Err(err) if err.is_panic() => {
            let panic = err.into_panic();
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            log::error!("processor panicked: {message}");
            Err(ProcessError::Transient(format!("the processor crashed: {message}")))
        }
        Err(_) => Err(ProcessError::Cancelled),
    };

    let reason = *cancel.borrow();
    match (outcome, reason) {
        (Ok(processed), _) => Outcome::Done(processed.bounded()),
        // Whatever a cancelled processor returns, it stopped because it was told to.
        (Err(_), Some(reason)) => Outcome::Cancelled(reason),
        (Err(ProcessError::Cancelled), None) => {
            Outcome::Failed(ProcessError::Transient("the processor stopped without a reason".into()))
        }
        (Err(err), None) => Outcome::Failed(err.bounded()),
    }
}

/// How a run ended, as the worker settles it.
enum Outcome {
    Done(Processed),
    Failed(ProcessError),
    Cancelled(CancelReason),
}

/// Records the outcome: Redis first (the lock token decides whether this worker may
/// still speak for the job), then the row. Returns the next job when ending this one
/// claimed it (`next`: this worker's id and process). `before_row` (the previous job's
/// ending, this job's progress events still on their way) is awaited before the row is
/// written, so the owner sees this job's events in order; Redis records progress only
/// on an active job, so late progress changes nothing there.
async fn settle(
    deps: &WorkerDeps,
    job: &ClaimedJob,
    worker_id: &str,
    outcome: Outcome,
    next: Option<(&str, &str)>,
    before_row: [Option<JoinHandle<()>>; 2],
) -> RunEnded {
    let queue = &deps.queue;
    let mut next_job = None;
    let end = |state: JobState, error: String| async move {
        let ending = std::time::Instant::now();
        let ended = queue.end_job_and_claim(job, state, &error, next).await;
        deps.metrics.steps().took(Step::End, ending);
        match ended {
            Ok((accepted, claimed)) => (Ok(accepted), claimed),
            Err(err) => (Err(err), None),
        }
    };
    let row_update: Option<RowUpdate> = match outcome {
        Outcome::Done(processed) => {
            let (accepted, claimed) = end(JobState::Completed, String::new()).await;
            next_job = claimed;
            match accepted {
                Ok(true) => Some(RowUpdate::Completed(processed)),
                Ok(false) => None,
                Err(err) => {
                    // The work is done and stored; the row says so even if Redis is away.
                    log::warn!("job {}: completion not recorded in Redis: {err}", job.job_id);
                    Some(RowUpdate::Completed(processed))
                }
            }
        }
        Outcome::Failed(ProcessError::Permanent(reason)) => {
            let (accepted, claimed) = end(JobState::Failed, reason.clone()).await;
            next_job = claimed;
            match accepted {
                Ok(false) => None,
                _ => Some(RowUpdate::Ended(JobState::Failed, Some(reason))),
            }
        }
        Outcome::Failed(ProcessError::Transient(reason)) => match queue.retry_or_fail(job, &reason).await {
            Ok(RetryDecision::Retrying { delay_ms, failures }) => {
                log::info!("job {} failed ({reason}); retry {failures} in {delay_ms} ms", job.job_id);
                Some(RowUpdate::Requeued(Some(reason)))
            }
            Ok(RetryDecision::Failed { failures }) => Some(RowUpdate::Ended(
                JobState::Failed,
                Some(bounded_message(format!("{reason} (gave up after {failures} failed attempts)"))),
            )),
            Ok(RetryDecision::LeaseLost) => None,
            // Redis is away: the row stays queued and the reconciler enqueues it again.
            Err(_) => Some(RowUpdate::Requeued(Some(reason))),
        },
        Outcome::Failed(ProcessError::Cancelled) | Outcome::Cancelled(CancelReason::Requested) => {
            let (accepted, claimed) = end(JobState::Cancelled, String::new()).await;
            next_job = claimed;
            match accepted {
                Ok(false) => None,
                _ => Some(RowUpdate::Ended(JobState::Cancelled, None)),
            }
        }
        Outcome::Failed(ProcessError::Deferred { until_ended }) => {
            match queue.defer(job, &until_ended, DEFER_FALLBACK).await {
                Ok(false) => None,
                // Redis away: the row says queued and the reconciler enqueues the job again.
                _ => Some(RowUpdate::Deferred),
            }
        }
        Outcome::Cancelled(CancelReason::LeaseLost) => None,
        Outcome::Cancelled(CancelReason::Shutdown) => match queue.release(job).await {
            Ok(false) => None,
            _ => Some(RowUpdate::Requeued(None)),
        },
    };
    let finishing = {
        let (deps, job, worker_id) = (deps.clone(), job.clone(), worker_id.to_string());
        async move {
            for task in before_row.into_iter().flatten() {
                let _ = task.await;
            }
            apply_row_update(&deps, &job, &worker_id, row_update).await;
        }
    };
    match next_job {
        Some(_) => RunEnded { next_job, finishing: Some(Box::pin(finishing)) },
        None => {
            finishing.await;
            RunEnded { next_job, finishing: None }
        }
    }
}

enum RowUpdate {
    Completed(Processed),
    Ended(JobState, Option<String>),
    Requeued(Option<String>),
    /// Waiting in the queue for another job's end (`Queue::defer`).
    Deferred,
}

/// Writes the outcome to the row, then tells the owner (only if the row changed:
/// a row that moved on is someone else's to announce).
async fn apply_row_update(deps: &WorkerDeps, job: &ClaimedJob, worker_id: &str, update: Option<RowUpdate>) {
    let (job_id, worker, attempt) = (job.job_id.clone(), worker_id.to_string(), job.attempts as i32);
    let Some(update) = update else {
        log::info!("job {}: lease lost; leaving the row to its new owner", job.job_id);
        let _ = deps
            .db
            .write(move |conn| attempts::record_end(conn, &job_id, &worker, attempt, AttemptOutcome::LeaseLost, None))
            .await;
        return;
    };
    let subject = subject_of(job);
    let event = match &update {
        RowUpdate::Completed(processed) => {
            subject.completed(processed.chunk_count, processed.reused_from.as_deref(), processed.warning.as_deref())
        }
        RowUpdate::Ended(JobState::Cancelled, _) => subject.cancelled(),
        RowUpdate::Ended(_, error) => subject.failed(error.as_deref().unwrap_or_default(), false, job.attempts),
        RowUpdate::Requeued(Some(error)) => subject.failed(error, true, job.attempts),
        RowUpdate::Requeued(None) | RowUpdate::Deferred => subject.queued(None),
    };
    let doc_id = job.document_id.clone();
    let result = deps
        .db
        .write(move |conn| {
            let (outcome, error) = match &update {
                RowUpdate::Completed(_) => (AttemptOutcome::Ended(JobState::Completed), None),
                RowUpdate::Ended(state, error) => (AttemptOutcome::Ended(*state), error.clone()),
                RowUpdate::Requeued(Some(error)) => (AttemptOutcome::Retrying, Some(error.clone())),
                RowUpdate::Requeued(None) => (AttemptOutcome::HandedBack, None),
                RowUpdate::Deferred => {
                    (AttemptOutcome::Deferred, Some("waiting for an identical document in flight".to_string()))
                }
            };
            attempts::record_end(conn, &job_id, &worker, attempt, outcome, error.as_deref())?;
            match &update {
                RowUpdate::Completed(processed) => documents::mark_completed(
                    conn,
                    &doc_id,
                    &job_id,
                    processed.chunk_count,
                    processed.warning.as_deref(),
                ),
                RowUpdate::Ended(state, error) => {
                    documents::mark_ended(conn, &doc_id, &job_id, *state, error.as_deref())
                }
                RowUpdate::Requeued(error) => {
                    documents::mark_requeued(conn, &doc_id, &job_id, &worker, attempt, error.as_deref())
                }
                RowUpdate::Deferred => documents::mark_requeued(conn, &doc_id, &job_id, &worker, attempt, None),
            }
        })
        .await;
    match result {
        Ok(true) => deps.events.announce(event).await,
        Ok(false) => log::info!("job {}: its row has moved on; outcome not announced", job.job_id),
        Err(err) => log::error!("job {}: outcome not saved in the database: {err}", job.job_id),
    }
}

/// A finishing that is already running, to hand on as one not yet started.
fn awaiting(running: JoinHandle<()>) -> Finishing {
    Box::pin(async move {
        let _ = running.await;
    })
}

fn subject_of(job: &ClaimedJob) -> Subject {
    Subject::new(&job.user_id, &job.document_id, &job.job_id)
}
