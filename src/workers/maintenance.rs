//! The queue's upkeep, run on timers by the PoolSupervisor: rescue stalled jobs, promote
//! due retries, trim finished jobs, and reconcile the database with Redis.

use std::time::Duration;

use super::WorkerDeps;
use crate::db::attempts::{self, AttemptOutcome};
use crate::db::documents;
use crate::job_state::JobState;
use crate::progress::Subject;
use crate::queue::{NewJob, QueueError, RescueOutcome};

/// A job finished in Redis but not yet in the row is left this long for its worker
/// to write the row before the reconciler sends it round again.
const FINISH_WRITE_GRACE_MS: i64 = 60_000;
const RECONCILE_PAGE: i64 = 500;

/// Returns jobs whose lease expired to the queue (or ends them), and tells the rows.
pub async fn rescue_stalled(deps: &WorkerDeps) -> Result<usize, QueueError> {
    let rescued = deps.queue.rescue_stalled().await?;
    for job in &rescued {
        log::warn!("job {} stalled ({} times): {:?}", job.job_id, job.stalls, job.outcome);
        let (doc_id, job_id, outcome) = (job.document_id.clone(), job.job_id.clone(), job.outcome);
        let (worker, attempt) = (job.worker_id.clone(), job.attempt as i32);
        let reason = match outcome {
            RescueOutcome::Requeued => "its worker stopped responding; queued again".to_string(),
            _ => format!("the job stalled {} times (its worker stopped responding)", job.stalls),
        };
        let error = reason.clone();
        let result = deps
            .db
            .run(move |conn| {
                let stalled = Some("the worker stopped responding");
                attempts::record_end(conn, &job_id, &worker, attempt, AttemptOutcome::Stalled, stalled)?;
                let changed = match outcome {
                    RescueOutcome::Requeued => {
                        documents::mark_requeued(conn, &doc_id, &job_id, &worker, attempt, Some(&error))?
                    }
                    RescueOutcome::Cancelled => {
                        documents::mark_ended(conn, &doc_id, &job_id, JobState::Cancelled, None)?
                    }
                    RescueOutcome::Failed => {
                        documents::mark_ended(conn, &doc_id, &job_id, JobState::Failed, Some(&error))?
                    }
                };
                Ok(if changed { documents::find(conn, &doc_id)? } else { None })
            })
            .await;
        match result {
            Ok(Some(doc)) => {
                let subject = Subject::new(&doc.user_id, &doc.id, &doc.job_id);
                let tries = doc.attempts.max(0) as u32;
                let event = match job.outcome {
                    RescueOutcome::Requeued => subject.failed(&reason, true, tries),
                    RescueOutcome::Cancelled => subject.cancelled(),
                    RescueOutcome::Failed => subject.failed(&reason, false, tries),
                };
                deps.events.announce(event).await;
            }
            Ok(None) => {}
            Err(err) => log::error!("rescued job {} not saved in the database: {err}", job.job_id),
        }
    }
    Ok(rescued.len())
}

pub async fn promote_delayed(deps: &WorkerDeps) -> Result<u64, QueueError> {
    deps.queue.promote_delayed().await
}

pub async fn apply_retention(deps: &WorkerDeps) -> Result<usize, QueueError> {
    deps.queue.apply_retention().await
}

/// Every document the database says is unfinished gets a live job in Redis: after a
/// Redis restart that lost everything, nothing is lost. Keys an earlier version left are
/// converted first. Returns how many jobs were enqueued.
pub async fn reconcile(deps: &WorkerDeps) -> Result<usize, String> {
    // One process at a time is enough; the others skip this round.
    let lock_ttl = Duration::from_secs(10);
    if !deps.queue.try_lock("reconcile", lock_ttl).await.map_err(|e| e.to_string())? {
        return Ok(0);
    }
    match deps.queue.upgrade_earlier_keys().await {
        Ok(true) => log::info!("Redis keys left by an earlier version converted"),
        Ok(false) => {}
        Err(err) => log::warn!("Redis keys left by an earlier version not converted: {err}"),
    }
    let result = reconcile_pages(deps).await;
    let _ = deps.queue.unlock("reconcile").await;
    result
}

async fn reconcile_pages(deps: &WorkerDeps) -> Result<usize, String> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut after: Option<String> = None;
    let mut enqueued = 0;
    loop {
        let cursor = after.clone();
        let page = deps
            .db
            .run(move |conn| documents::list_unfinished(conn, cursor.as_deref(), RECONCILE_PAGE))
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        let job_ids: Vec<String> = page.iter().map(|d| d.job_id.clone()).collect();
        let states = deps.queue.job_states(&job_ids).await.map_err(|e| e.to_string())?;
        let lost: Vec<NewJob> = page
            .iter()
            .zip(states)
            .filter(|(_, state)| match state {
                None => true,
                Some((state, finished_at)) => state.is_terminal() && now_ms - finished_at > FINISH_WRITE_GRACE_MS,
            })
            .map(|(doc, _)| NewJob::for_document(doc))
            .collect();
        if !lost.is_empty() {
            log::warn!("reconciler: {} unfinished documents had no live job; enqueuing them", lost.len());
            deps.queue.enqueue(&lost).await.map_err(|e| e.to_string())?;
            deps.queue.count_reconciled(lost.len()).await.map_err(|e| e.to_string())?;
            enqueued += lost.len();
        }
        if (job_ids.len() as i64) < RECONCILE_PAGE {
            break;
        }
    }
    Ok(enqueued)
}
