//! The job queue in Redis. Every state change is one Lua script (atomic, one round
//! trip); see `lua/` for the scripts and `lua/prelude.lua` for the layout of the keys.

mod browse;
mod connection;
mod endings;
mod job;
mod keys;
mod registry;
mod statistics;
mod tickets;
mod twins;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::PubSub;
use redis::{AsyncCommands, Script, ScriptInvocation};

use crate::config::{QueueConfig, RedisConfig};
use crate::job_state::{JobState, UnknownJobState};

pub use browse::{JobRecord, OldestWaiting, RedisMemory};
pub use connection::{Connection, DedicatedConnection};
pub use job::{CancelOutcome, ClaimedJob, NewJob, RescueOutcome, RescuedJob, RetryDecision, StateCounts};
pub use keys::Keys;
pub use registry::WorkerInfo;
pub use twins::TwinClaim;

/// How long a deferred job waits when the job it waits for had already ended: just
/// until that job's row says how it ended.
const DEFER_AFTER_AN_END: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis pool: {0}")]
    Pool(String),
    /// No connection could be made in the pool's wait: Redis is down or unreachable.
    #[error("redis unreachable: {0}")]
    Unreachable(String),
    #[error("unexpected reply from a queue script: {0}")]
    Reply(String),
}

impl From<UnknownJobState> for QueueError {
    fn from(err: UnknownJobState) -> QueueError {
        QueueError::Reply(err.to_string())
    }
}

impl From<bb8::RunError<redis::RedisError>> for QueueError {
    fn from(err: bb8::RunError<redis::RedisError>) -> QueueError {
        match err {
            bb8::RunError::User(e) => QueueError::Redis(e),
            bb8::RunError::TimedOut => QueueError::Pool("timed out waiting for a connection".into()),
        }
    }
}

macro_rules! lua {
    ($file:literal) => {
        Script::new(concat!(include_str!("lua/prelude.lua"), "\n", include_str!(concat!("lua/", $file))))
    };
}

struct Scripts {
    enqueue: Script,
    claim: Script,
    extend_lease: Script,
    complete: Script,
    retry: Script,
    release: Script,
    defer: Script,
    rescue_stalled: Script,
    promote_delayed: Script,
    cancel: Script,
    clean: Script,
    positions: Script,
    mark_positions: Script,
    counts: Script,
    oldest_waiting: Script,
    record_statistics: Script,
    wake: Script,
    upgrade: Script,
}

impl Scripts {
    fn load() -> Scripts {
        Scripts {
            enqueue: lua!("enqueue.lua"),
            claim: lua!("claim.lua"),
            extend_lease: lua!("extend_lease.lua"),
            complete: lua!("complete.lua"),
            retry: lua!("retry.lua"),
            release: lua!("release.lua"),
            defer: lua!("defer.lua"),
            rescue_stalled: lua!("rescue_stalled.lua"),
            promote_delayed: lua!("promote_delayed.lua"),
            cancel: lua!("cancel.lua"),
            clean: lua!("clean.lua"),
            positions: lua!("positions.lua"),
            mark_positions: lua!("mark_positions.lua"),
            counts: lua!("counts.lua"),
            oldest_waiting: lua!("oldest_waiting.lua"),
            record_statistics: lua!("record_statistics.lua"),
            wake: lua!("wake.lua"),
            upgrade: lua!("upgrade.lua"),
        }
    }
}

/// A cheap handle to the queue; clone it freely.
#[derive(Clone)]
pub struct Queue {
    backend: Arc<connection::Backend>,
    keys: Keys,
    scripts: Arc<Scripts>,
    config: QueueConfig,
    statistics: Arc<statistics::Statistics>,
    endings: Arc<endings::Endings>,
}

/// Whether the lease heartbeat still owns the job, and whether someone asked to cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStatus {
    Held,
    HeldCancelRequested,
    Lost,
}

impl Queue {
    /// Builds the clients without connecting: the server starts even while Redis is
    /// down (uploads are kept in the database and enqueued by the reconciler later).
    pub fn new(redis: &RedisConfig, config: &QueueConfig) -> Result<Queue, QueueError> {
        Ok(Queue {
            backend: Arc::new(connection::Backend::new(redis)?),
            keys: Keys::new(&redis.prefix),
            scripts: Arc::new(Scripts::load()),
            config: config.clone(),
            statistics: Default::default(),
            endings: Default::default(),
        })
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A connection for short commands (from the pool, or the shared cluster connection).
    pub async fn connection(&self) -> Result<Connection<'_>, QueueError> {
        self.backend.connection().await
    }

    /// A connection of its own, with no response timeout, for blocking waits: a
    /// pooled connection would time out a blocking command and strand its reply.
    pub async fn dedicated_connection(&self) -> Result<DedicatedConnection, QueueError> {
        self.backend.dedicated_connection().await
    }

    /// A pub/sub connection of its own (the progress Hub's subscription).
    pub async fn pubsub(&self) -> Result<PubSub, QueueError> {
        self.backend.pubsub().await
    }

    /// Starts a call of a script that follows lua/prelude.lua: the key prefix is its
    /// first argument, and is declared as its key too, so that a Redis Cluster runs it
    /// on the node that owns the prefix's hash slot, where every docqueue key lives.
    pub fn invocation<'a>(&self, script: &'a Script) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation.key(self.keys.prefix()).arg(self.keys.prefix());
        invocation
    }

    pub async fn ping(&self) -> Result<(), QueueError> {
        let mut conn = self.connection().await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// Enqueues jobs in one round trip and returns each one's queue position
    /// (None when it is not waiting, e.g. already running).
    pub async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<Option<u64>>, QueueError> {
        self.enqueue_waking(jobs, true).await
    }

    /// Enqueues as `enqueue` does but leaves idle workers asleep, for a caller that
    /// announces the jobs (`document.queued`) first and then calls `wake_workers`: a
    /// woken worker's first event could otherwise reach the owner before the announcement.
    /// A busy worker can still claim such a job in between; its events about the job are
    /// held back until the announcement is published (`Publisher::publish`).
    pub async fn enqueue_before_announcing(&self, jobs: &[NewJob]) -> Result<Vec<Option<u64>>, QueueError> {
        self.enqueue_waking(jobs, false).await
    }

    /// Wakes up to `count` idle workers.
    pub async fn wake_workers(&self, count: usize) -> Result<(), QueueError> {
        let mut conn = self.connection().await?;
        let () = self.invocation(&self.scripts.wake).arg(count).invoke_async(&mut conn).await?;
        Ok(())
    }

    async fn enqueue_waking(&self, jobs: &[NewJob], wake: bool) -> Result<Vec<Option<u64>>, QueueError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = self.invocation(&self.scripts.enqueue);
        invocation.arg(if wake { "1" } else { "0" });
        for job in jobs {
            invocation
                .arg(&job.job_id)
                .arg(&job.document_id)
                .arg(&job.user_id)
                .arg(job.priority)
                .arg(&job.content_type)
                .arg(job.size_bytes)
                .arg(&job.filename);
        }
        let mut conn = self.connection().await?;
        let positions: Vec<i64> = invocation.invoke_async(&mut conn).await?;
        Ok(positions.into_iter().map(|p| u64::try_from(p).ok().filter(|p| *p > 0)).collect())
    }

    /// Claims the next job fairly, or returns None (nothing waiting, or paused). The job
    /// is owned by its lease alone; workers use `claim_for_process`.
    pub async fn claim(
        &self,
        conn: &mut DedicatedConnection,
        worker_id: &str,
    ) -> Result<Option<ClaimedJob>, QueueError> {
        self.claim_for_process(conn, worker_id, "").await
    }

    /// Claims for a worker of the process `process` (`host:pid`), which keeps its
    /// liveness key renewed (`keep_process_alive`): if the process dies, its job is
    /// rescued as soon as the key expires, not when the lease does. An empty `process`
    /// leaves the job to its lease alone.
    pub async fn claim_for_process(
        &self,
        conn: &mut DedicatedConnection,
        worker_id: &str,
        process: &str,
    ) -> Result<Option<ClaimedJob>, QueueError> {
        let token = ulid::Ulid::generate().to_string();
        let fields: Option<Vec<String>> = self
            .invocation(&self.scripts.claim)
            .arg(worker_id)
            .arg(&token)
            .arg(self.config.lease_ms)
            .arg(process)
            .arg(self.config.process_liveness_ms)
            .invoke_async(conn)
            .await?;
        fields.map(|fields| self.claimed(fields)).transpose()
    }

    /// Renews the worker process's liveness key (every third of its lifetime).
    pub async fn keep_process_alive(&self, process: &str) -> Result<(), QueueError> {
        let mut conn = self.connection().await?;
        let _: () = conn.pset_ex(self.keys.process_alive(process), 1, self.config.process_liveness_ms).await?;
        Ok(())
    }

    /// Waits up to `timeout` for a sign that work arrived (on a dedicated connection).
    pub async fn wait_for_work(&self, conn: &mut DedicatedConnection, timeout: Duration) -> Result<(), QueueError> {
        let _: Option<(String, String)> = conn.blpop(self.keys.wake(), timeout.as_secs_f64()).await?;
        Ok(())
    }

    pub async fn extend_lease(&self, job: &ClaimedJob) -> Result<LeaseStatus, QueueError> {
        let mut conn = self.connection().await?;
        let reply: i64 = self
            .invocation(&self.scripts.extend_lease)
            .arg(&job.job_id)
            .arg(&job.token)
            .arg(self.config.lease_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(match reply {
            1 => LeaseStatus::Held,
            2 => LeaseStatus::HeldCancelRequested,
            _ => LeaseStatus::Lost,
        })
    }

    /// A cheap check, polled often while a job runs: is it still ours, is a cancel asked?
    pub async fn check_lease(&self, job: &ClaimedJob) -> Result<LeaseStatus, QueueError> {
        let mut conn = self.connection().await?;
        let (state, token, cancel): (Option<String>, Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.keys.job(&job.job_id))
            .arg("state")
            .arg("token")
            .arg("cancel_requested")
            .query_async(&mut conn)
            .await?;
        Ok(match (state.as_deref(), token) {
            (Some("active"), Some(token)) if token == job.token => {
                if cancel.is_some() {
                    LeaseStatus::HeldCancelRequested
                } else {
                    LeaseStatus::Held
                }
            }
            _ => LeaseStatus::Lost,
        })
    }

    /// Ends a job the worker owns in a terminal state: `completed`, `cancelled` or (for
    /// good) `failed`. Returns false when the token no longer owns it: the caller must
    /// not touch the row.
    pub async fn end_job(&self, job: &ClaimedJob, state: JobState, error: &str) -> Result<bool, QueueError> {
        Ok(self.end_job_and_claim(job, state, error, None).await?.0)
    }

    /// Ends a job as `end_job` does and, for `next` (worker id, process), claims that
    /// worker's next job in the same round trip, as a claim would. The claim is made
    /// only when the end is accepted.
    pub async fn end_job_and_claim(
        &self,
        job: &ClaimedJob,
        state: JobState,
        error: &str,
        next: Option<(&str, &str)>,
    ) -> Result<(bool, Option<ClaimedJob>), QueueError> {
        if !state.is_terminal() {
            return Err(QueueError::Reply(format!("a job cannot end `{state}`")));
        }
        let next = next.map(|(worker_id, process)| endings::NextClaim {
            worker_id: worker_id.to_string(),
            process: process.to_string(),
            token: ulid::Ulid::generate().to_string(),
        });
        let ending = endings::Ending {
            job_id: job.job_id.clone(),
            token: job.token.clone(),
            state: state.redis_name(),
            error: error.to_string(),
            next,
        };
        let mut reply = self.send_ending(ending).await?;
        match reply.first().map(String::as_str) {
            Some("1") => {}
            Some("E") => return Err(QueueError::Reply(reply.pop().unwrap_or_default())),
            _ => return Ok((false, None)),
        }
        let finished_at_ms: i64 = reply.get(1).and_then(|at| at.parse().ok()).unwrap_or(job.started_at_ms);
        if state == JobState::Completed {
            self.record_completion(job, finished_at_ms);
        }
        if reply.len() <= 2 {
            return Ok((true, None));
        }
        let next_job = self.claimed(reply.split_off(2))?;
        Ok((true, Some(next_job)))
    }

    /// The job a claim script returned, its wait counted in the statistics.
    fn claimed(&self, fields: Vec<String>) -> Result<ClaimedJob, QueueError> {
        let job = ClaimedJob::from_fields(fields)
            .ok_or_else(|| QueueError::Reply("claimed job without its fields".into()))?;
        self.record_claim(&job);
        Ok(job)
    }

    /// A transient failure: retry after back-off, or fail when retries are spent.
    pub async fn retry_or_fail(&self, job: &ClaimedJob, error: &str) -> Result<RetryDecision, QueueError> {
        let mut conn = self.connection().await?;
        let jitter = 0.75 + fastrand::f64() * 0.5;
        let (outcome, delay_ms, failures): (String, u64, u32) = self
            .invocation(&self.scripts.retry)
            .arg(&job.job_id)
            .arg(&job.token)
            .arg(error)
            .arg(self.config.retry_attempts)
            .arg(self.config.backoff_base_ms)
            .arg(self.config.backoff_max_ms)
            .arg(jitter)
            .invoke_async(&mut conn)
            .await?;
        Ok(match outcome.as_str() {
            "retrying" => RetryDecision::Retrying { delay_ms, failures },
            "lost" => RetryDecision::LeaseLost,
            state => match JobState::from_redis(state)? {
                JobState::Failed => RetryDecision::Failed { failures },
                other => return Err(QueueError::Reply(format!("retry left the job `{other}`"))),
            },
        })
    }

    /// Hands an unfinished job back to the queue (shutdown); the attempt is not counted.
    pub async fn release(&self, job: &ClaimedJob) -> Result<bool, QueueError> {
        let mut conn = self.connection().await?;
        let done: i64 =
            self.invocation(&self.scripts.release).arg(&job.job_id).arg(&job.token).invoke_async(&mut conn).await?;
        Ok(done == 1)
    }

    /// Puts a job back to wait until the job `until_ended` has ended (or `fallback` has
    /// passed, should that end never come): its processor cannot go on before. The
    /// attempt is not counted. Returns false when the token no longer owns the job.
    pub async fn defer(&self, job: &ClaimedJob, until_ended: &str, fallback: Duration) -> Result<bool, QueueError> {
        let mut conn = self.connection().await?;
        let done: i64 = self
            .invocation(&self.scripts.defer)
            .arg(&job.job_id)
            .arg(&job.token)
            .arg(until_ended)
            .arg(fallback.as_millis() as u64)
            .arg(DEFER_AFTER_AN_END.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        Ok(done == 1)
    }

    pub async fn cancel(&self, job_id: &str) -> Result<CancelOutcome, QueueError> {
        let mut conn = self.connection().await?;
        let outcome: String = self.invocation(&self.scripts.cancel).arg(job_id).invoke_async(&mut conn).await?;
        Ok(match outcome.as_str() {
            "cancelling" => CancelOutcome::Cancelling,
            "missing" => CancelOutcome::Missing,
            state => match JobState::from_redis(state)? {
                JobState::Cancelled => CancelOutcome::Cancelled,
                finished if finished.is_terminal() => CancelOutcome::Finished(finished),
                other => return Err(QueueError::Reply(format!("cancel left the job `{other}`"))),
            },
        })
    }

    /// Returns the jobs of expired leases and of dead worker processes to the queue (or
    /// fails/cancels them); see rescue_stalled.lua.
    pub async fn rescue_stalled(&self) -> Result<Vec<RescuedJob>, QueueError> {
        let mut conn = self.connection().await?;
        let flat: Vec<String> = self
            .invocation(&self.scripts.rescue_stalled)
            .arg(self.config.max_stalls)
            .arg(500)
            .invoke_async(&mut conn)
            .await?;
        flat.chunks_exact(6)
            .map(|f| {
                Ok(RescuedJob {
                    job_id: f[0].clone(),
                    document_id: f[1].clone(),
                    outcome: RescueOutcome::from_redis(&f[2])?,
                    stalls: f[3].parse().unwrap_or(0),
                    worker_id: f[4].clone(),
                    attempt: f[5].parse().unwrap_or(0),
                })
            })
            .collect()
    }

    pub async fn promote_delayed(&self) -> Result<u64, QueueError> {
        let mut conn = self.connection().await?;
        Ok(self.invocation(&self.scripts.promote_delayed).arg(500).invoke_async(&mut conn).await?)
    }

    /// Removes finished jobs of `state` finished before `older_than` ago, then the
    /// oldest beyond `keep`. Returns the removed job ids.
    pub async fn clean(&self, state: JobState, older_than: Duration, keep: u64) -> Result<Vec<String>, QueueError> {
        self.clean_at(state, older_than, keep, chrono::Utc::now().timestamp_millis()).await
    }

    /// `clean` as it would run at `now_ms` (ms since the epoch): ages are measured from
    /// there, so a caller can age jobs without waiting for them to grow old.
    pub async fn clean_at(
        &self,
        state: JobState,
        older_than: Duration,
        keep: u64,
        now_ms: i64,
    ) -> Result<Vec<String>, QueueError> {
        let mut conn = self.connection().await?;
        let cutoff = now_ms.saturating_sub(i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX));
        Ok(self
            .invocation(&self.scripts.clean)
            .arg(state.redis_name())
            .arg(cutoff)
            .arg(keep)
            .arg(10_000)
            .invoke_async(&mut conn)
            .await?)
    }

    /// Converts keys an earlier version left in Redis to this version's shape
    /// (lua/upgrade.lua); a no-op once done. Returns whether anything was converted.
    pub async fn upgrade_earlier_keys(&self) -> Result<bool, QueueError> {
        let mut conn = self.connection().await?;
        let converted: i64 = self.invocation(&self.scripts.upgrade).invoke_async(&mut conn).await?;
        Ok(converted > 0)
    }

    /// Trims finished jobs to the configured retention (count and age per state).
    pub async fn apply_retention(&self) -> Result<usize, QueueError> {
        let c = &self.config;
        let completed = self
            .clean(
                JobState::Completed,
                Duration::from_secs(c.retention_completed_age_secs),
                c.retention_completed_count,
            )
            .await?;
        let cancelled = self
            .clean(
                JobState::Cancelled,
                Duration::from_secs(c.retention_completed_age_secs),
                c.retention_completed_count,
            )
            .await?;
        let failed = self
            .clean(JobState::Failed, Duration::from_secs(c.retention_failed_age_secs), c.retention_failed_count)
            .await?;
        Ok(completed.len() + cancelled.len() + failed.len())
    }

    pub async fn positions(&self, job_ids: &[String]) -> Result<Vec<Option<u64>>, QueueError> {
        if job_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = self.invocation(&self.scripts.positions);
        for id in job_ids {
            invocation.arg(id);
        }
        let mut conn = self.connection().await?;
        let positions: Vec<i64> = invocation.invoke_async(&mut conn).await?;
        Ok(positions.into_iter().map(|p| u64::try_from(p).ok().filter(|p| *p > 0)).collect())
    }

    /// Records announced positions; true for each one that changed since last time.
    pub async fn mark_announced_positions(&self, positions: &[(String, u64)]) -> Result<Vec<bool>, QueueError> {
        if positions.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = self.invocation(&self.scripts.mark_positions);
        for (job_id, position) in positions {
            invocation.arg(job_id).arg(*position);
        }
        let mut conn = self.connection().await?;
        let changed: Vec<i64> = invocation.invoke_async(&mut conn).await?;
        Ok(changed.into_iter().map(|c| c == 1).collect())
    }

    pub async fn counts(&self) -> Result<StateCounts, QueueError> {
        let mut conn = self.connection().await?;
        let c: Vec<u64> = self.invocation(&self.scripts.counts).invoke_async(&mut conn).await?;
        let get = |i: usize| c.get(i).copied().unwrap_or(0);
        Ok(StateCounts {
            queued: get(0),
            delayed: get(1),
            processing: get(2),
            completed: get(3),
            failed: get(4),
            cancelled: get(5),
        })
    }

    /// The job's state in Redis for each id (None: Redis has no such job).
    pub async fn job_states(&self, job_ids: &[String]) -> Result<Vec<Option<(JobState, i64)>>, QueueError> {
        if job_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.connection().await?;
        let mut pipe = redis::pipe();
        for id in job_ids {
            pipe.cmd("HMGET").arg(self.keys.job(id)).arg("state").arg("finished_at");
        }
        let replies: Vec<(Option<String>, Option<i64>)> = pipe.query_async(&mut conn).await?;
        let typed = |(state, finished): (Option<String>, Option<i64>)| {
            state.map(|s| Ok((JobState::from_redis(&s)?, finished.unwrap_or(0)))).transpose()
        };
        replies.into_iter().map(typed).collect()
    }

    /// The progress and stage recorded on each running job (None: not running, or no
    /// progress yet). The publish script records them with each progress event.
    pub async fn live_progress(&self, job_ids: &[String]) -> Result<Vec<Option<(i32, String)>>, QueueError> {
        if job_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.connection().await?;
        let mut pipe = redis::pipe();
        for id in job_ids {
            pipe.cmd("HMGET").arg(self.keys.job(id)).arg("state").arg("progress").arg("stage");
        }
        let replies: Vec<(Option<String>, Option<i32>, Option<String>)> = pipe.query_async(&mut conn).await?;
        let running = JobState::Processing.redis_name();
        Ok(replies
            .into_iter()
            .map(|(state, progress, stage)| match (state.as_deref(), progress, stage) {
                (Some(state), Some(progress), Some(stage)) if state == running => Some((progress, stage)),
                _ => None,
            })
            .collect())
    }

    /// Counts jobs the reconciler found missing from Redis and enqueued again
    /// (`reconciled` in the stats hash, so every process's `/metrics` reports it).
    pub async fn count_reconciled(&self, jobs: usize) -> Result<(), QueueError> {
        let mut conn = self.connection().await?;
        let _: () = conn.hincr(self.keys.stats(), "reconciled", jobs).await?;
        Ok(())
    }

    /// Counts how an extractor process ended (`extractor:<outcome>` in the stats hash),
    /// so every process's `/metrics` reports the cluster's figures.
    pub async fn count_extractor_outcome(&self, outcome: &str) -> Result<(), QueueError> {
        let mut conn = self.connection().await?;
        let _: () = conn.hincr(self.keys.stats(), format!("extractor:{outcome}"), 1).await?;
        Ok(())
    }

    pub async fn pause(&self) -> Result<(), QueueError> {
        let mut conn = self.connection().await?;
        let _: () = conn.set(self.keys.paused(), 1).await?;
        Ok(())
    }

    pub async fn resume(&self) -> Result<(), QueueError> {
        let mut conn = self.connection().await?;
        let _: () = conn.del(self.keys.paused()).await?;
        // Idle workers wait on the wake list; nudge them so claiming restarts at once.
        let _: () = conn.lpush(self.keys.wake(), "resume").await?;
        Ok(())
    }

    pub async fn is_paused(&self) -> Result<bool, QueueError> {
        let mut conn = self.connection().await?;
        Ok(conn.exists(self.keys.paused()).await?)
    }

    /// Counters since the queue was created (enqueued, completed, failed, retried, …).
    pub async fn stats(&self) -> Result<HashMap<String, u64>, QueueError> {
        let mut conn = self.connection().await?;
        Ok(conn.hgetall(self.keys.stats()).await?)
    }

    pub async fn unlock(&self, task: &str) -> Result<(), QueueError> {
        let mut conn = self.connection().await?;
        let _: () = conn.del(self.keys.lock(task)).await?;
        Ok(())
    }

    /// Takes a short exclusive lock so one process at a time runs `task`.
    pub async fn try_lock(&self, task: &str, ttl: Duration) -> Result<bool, QueueError> {
        let mut conn = self.connection().await?;
        let reply: Option<String> = redis::cmd("SET")
            .arg(self.keys.lock(task))
            .arg(std::process::id())
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .query_async(&mut conn)
            .await?;
        Ok(reply.is_some())
    }
}
