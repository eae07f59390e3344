//! Queries on `job_attempts`: the history of each job, one row per claim.

use diesel::prelude::*;

use super::models::{now, JobAttempt};
use super::schema::job_attempts;
use super::{DbConnection, DbError};
use crate::processing::extractor::ExtractorReport;

pub fn record_start(
    conn: &mut DbConnection,
    document_id: &str,
    job_id: &str,
    attempt: i32,
    worker_id: &str,
) -> Result<(), DbError> {
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
    };
    diesel::insert_into(job_attempts::table).values(&row).execute(conn)?;
    Ok(())
}

/// Closes the job's open attempt by `worker_id`, or by any worker (the rescuer closes
/// the attempt of a worker that died).
pub fn record_end(
    conn: &mut DbConnection,
    job_id: &str,
    worker_id: Option<&str>,
    outcome: &str,
    error: Option<&str>,
) -> Result<(), DbError> {
    let mut open = job_attempts::table
        .filter(job_attempts::job_id.eq(job_id))
        .filter(job_attempts::finished_at.is_null())
        .into_boxed();
    if let Some(worker_id) = worker_id {
        open = open.filter(job_attempts::worker_id.eq(worker_id));
    }
    let ids: Vec<String> = open.select(job_attempts::id).load(conn)?;
    diesel::update(job_attempts::table.filter(job_attempts::id.eq_any(ids)))
        .set((job_attempts::finished_at.eq(now()), job_attempts::outcome.eq(outcome), job_attempts::error.eq(error)))
        .execute(conn)?;
    Ok(())
}

/// Keeps how the attempt's extractor process ended (no row: nothing to keep, as for
/// inline processing, which has no attempts).
pub fn record_extractor(
    conn: &mut DbConnection,
    job_id: &str,
    attempt: i32,
    report: &ExtractorReport,
) -> Result<(), DbError> {
    diesel::update(
        job_attempts::table.filter(job_attempts::job_id.eq(job_id)).filter(job_attempts::attempt.eq(attempt)),
    )
    .set((
        job_attempts::extractor_outcome.eq(report.outcome.as_str()),
        job_attempts::extractor_exit.eq(&report.exit),
        job_attempts::extractor_peak_memory_kb.eq(report.peak_memory_kb),
        job_attempts::extractor_cpu_ms.eq(report.cpu_ms),
    ))
    .execute(conn)?;
    Ok(())
}

pub fn for_document(conn: &mut DbConnection, document_id: &str) -> Result<Vec<JobAttempt>, DbError> {
    Ok(job_attempts::table
        .filter(job_attempts::document_id.eq(document_id))
        .select(JobAttempt::as_select())
        .order((job_attempts::started_at.asc(), job_attempts::id.asc()))
        .load(conn)?)
}
