//! Queries on `job_attempts`: the history of each job, one row per claim.

use diesel::prelude::*;

use super::cached::cached;
use super::models::{now, JobAttempt};
use super::schema::job_attempts;
use super::{write_transaction, DbConnection, DbError};
use crate::job_state::JobState;

/// How one attempt ended, as `job_attempts.outcome` keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The job ended for good in this state (completed, failed or cancelled).
    Ended(JobState),
    /// A transient failure: the job was scheduled again.
    Retrying,
    /// Unfinished at shutdown: handed back to the queue, not counted as a try.
    HandedBack,
    /// Waiting in the queue for an identical document in flight, not counted as a try.
    Deferred,
    /// Another worker took the job over: this one's lease ran out.
    LeaseLost,
    /// Its worker stopped responding and the rescuer took the job back.
    Stalled,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Ended(state) => state.as_str(),
            AttemptOutcome::Retrying => "retrying",
            AttemptOutcome::HandedBack => "handed back",
            AttemptOutcome::Deferred => "deferred",
            AttemptOutcome::LeaseLost => "lease lost",
            AttemptOutcome::Stalled => "stalled",
        }
    }
}

/// How the attempt's extractor process ended, as its row keeps it.
#[derive(Debug, Clone)]
pub struct ExtractorRun {
    /// The kind of end (`ok`, `memory_limit`, `crash`, …).
    pub outcome: &'static str,
    /// "exit 0", "signal 9 (SIGKILL)", or why it did not start.
    pub exit: String,
    pub peak_memory_kb: i64,
    pub cpu_ms: i64,
    /// The process that read it; none when no process started.
    pub pid: Option<u32>,
}

pub fn record_start(
    conn: &mut DbConnection,
    document_id: &str,
    job_id: &str,
    attempt: i32,
    worker_id: &str,
) -> Result<(), DbError> {
    write_transaction(conn, |conn| {
        let row = JobAttempt {
            id: ulid::Ulid::generate().to_string(),
            document_id: document_id.to_string(),
            job_id: job_id.to_string(),
            attempt,
            worker_id: worker_id.to_string(),
            started_at: now(),
            finished_at: None,
            outcome: None,
            error: None,
            extractor_outcome: None,
            extractor_exit: None,
            extractor_peak_memory_kb: None,
            extractor_cpu_ms: None,
            extractor_pid: None,
        };
        diesel::insert_into(job_attempts::table).values(&row).execute(conn)?;
        Ok(())
    })
}

/// Closes the run of the job by `worker_id` numbered `attempt`, if it is still open
/// (the rescuer closes the run of a worker that died, never a newer run of the job).
pub fn record_end(
    conn: &mut DbConnection,
    job_id: &str,
    worker_id: &str,
    attempt: i32,
    outcome: AttemptOutcome,
    error: Option<&str>,
) -> Result<(), DbError> {
    write_transaction(conn, |conn| {
        let open = job_attempts::table
            .filter(job_attempts::job_id.eq(job_id))
            .filter(job_attempts::worker_id.eq(worker_id))
            .filter(job_attempts::attempt.eq(attempt))
            .filter(job_attempts::finished_at.is_null());
        cached(diesel::update(open).set((
            job_attempts::finished_at.eq(now()),
            job_attempts::outcome.eq(outcome.as_str()),
            job_attempts::error.eq(error),
        )))
        .execute(conn)?;
        Ok(())
    })
}

/// Keeps how the attempt's extractor process ended (no row: nothing to keep, as for
/// inline processing, which has no attempts).
pub fn record_extractor(
    conn: &mut DbConnection,
    job_id: &str,
    attempt: i32,
    run: &ExtractorRun,
) -> Result<(), DbError> {
    write_transaction(conn, |conn| {
        cached(
            diesel::update(
                job_attempts::table.filter(job_attempts::job_id.eq(job_id)).filter(job_attempts::attempt.eq(attempt)),
            )
            .set((
                job_attempts::extractor_outcome.eq(run.outcome),
                job_attempts::extractor_exit.eq(&run.exit),
                job_attempts::extractor_peak_memory_kb.eq(run.peak_memory_kb),
                job_attempts::extractor_cpu_ms.eq(run.cpu_ms),
                job_attempts::extractor_pid.eq(run.pid.map(i64::from)),
            )),
        )
        .execute(conn)?;
        Ok(())
    })
}

pub fn for_document(conn: &mut DbConnection, document_id: &str) -> Result<Vec<JobAttempt>, DbError> {
    Ok(job_attempts::table
        .filter(job_attempts::document_id.eq(document_id))
        .select(JobAttempt::as_select())
        .order((job_attempts::started_at.asc(), job_attempts::id.asc()))
        .load(conn)?)
}
