//! Reading the queue for the admin view: which jobs are in which state, and each job's
//! record as Redis holds it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use serde::Serialize;

use super::{Queue, QueueError};
use crate::job_state::JobState;

/// A job as Redis records it (finished ones until retention removes them).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobRecord {
    pub job_id: String,
    pub document_id: String,
    pub user_id: String,
    pub filename: String,
    pub state: JobState,
    pub content_type: String,
    pub size_bytes: i64,
    pub priority: i64,
    pub attempts: i64,
    pub failures: i64,
    pub stalls: i64,
    pub progress: i64,
    pub stage: Option<String>,
    pub worker: Option<String>,
    pub error: Option<String>,
    pub enqueued_at_ms: Option<i64>,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub retry_at_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    /// The same instants as the `_ms` fields, in RFC 3339 as every JSON body has them.
    pub enqueued_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub retry_at: Option<DateTime<Utc>>,
}

impl JobRecord {
    /// None for a hash that is not a job's (no or an unknown `state`).
    fn from_fields(job_id: &str, f: HashMap<String, String>) -> Option<JobRecord> {
        let text = |k: &str| f.get(k).cloned().filter(|v| !v.is_empty());
        let num = |k: &str| f.get(k).and_then(|v| v.parse::<f64>().ok()).map(|v| v as i64);
        let instant = |k: &str| num(k).and_then(DateTime::from_timestamp_millis);
        let state = match JobState::from_redis(&text("state")?) {
            Ok(state) => state,
            Err(err) => {
                log::warn!("job {job_id} left out: {err}");
                return None;
            }
        };
        Some(JobRecord {
            job_id: job_id.to_string(),
            document_id: text("document_id").unwrap_or_default(),
            user_id: text("user_id").unwrap_or_default(),
            filename: text("filename").unwrap_or_default(),
            state,
            content_type: text("content_type").unwrap_or_default(),
            size_bytes: num("size_bytes").unwrap_or(0),
            priority: num("priority").unwrap_or(0),
            attempts: num("attempts").unwrap_or(0),
            failures: num("failures").unwrap_or(0),
            stalls: num("stalls").unwrap_or(0),
            progress: num("progress").unwrap_or(0),
            stage: text("stage"),
            worker: text("worker"),
            error: text("error"),
            enqueued_at_ms: num("enqueued_at"),
            started_at_ms: num("started_at"),
            finished_at_ms: num("finished_at"),
            retry_at_ms: num("retry_at"),
            duration_ms: num("duration_ms"),
            enqueued_at: instant("enqueued_at"),
            started_at: instant("started_at"),
            finished_at: instant("finished_at"),
            retry_at: instant("retry_at"),
        })
    }
}

/// Redis's memory as `INFO` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct RedisMemory {
    pub used_bytes: u64,
    /// `maxmemory`; 0 means no limit.
    pub max_bytes: u64,
    /// `maxmemory-policy`: anything but `noeviction` may drop jobs.
    pub policy: String,
    /// Keys evicted since Redis started (`evicted_keys`).
    pub evicted_keys: u64,
}

/// The waiting job that has waited longest, and for how long.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OldestWaiting {
    pub job_id: String,
    pub waited_ms: u64,
}

impl Queue {
    /// Job ids in one state, at most `limit`: waiting ones in claim order, delayed and
    /// running ones by due time, finished ones newest first.
    pub async fn job_ids_in_state(&self, state: JobState, limit: usize) -> Result<Vec<String>, QueueError> {
        let mut conn = self.connection().await?;
        let keys = self.keys();
        let stop = limit.saturating_sub(1) as isize;
        Ok(match state {
            JobState::Queued => conn.zrange(keys.queue(), 0, stop).await?,
            JobState::Delayed | JobState::Processing => conn.zrange(keys.state_set(state), 0, stop).await?,
            finished => conn.zrevrange(keys.state_set(finished), 0, stop).await?,
        })
    }

    /// The records of these jobs (missing ones left out), in the order given.
    pub async fn job_records(&self, job_ids: &[String]) -> Result<Vec<JobRecord>, QueueError> {
        let mut records = Vec::with_capacity(job_ids.len());
        let mut conn = self.connection().await?;
        for batch in job_ids.chunks(500) {
            let mut pipe = redis::pipe();
            for id in batch {
                pipe.hgetall(self.keys().job(id));
            }
            let fields: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
            records.extend(batch.iter().zip(fields).filter_map(|(id, f)| JobRecord::from_fields(id, f)));
        }
        Ok(records)
    }

    /// Waiting jobs per user, the `top` users with most first.
    pub async fn queued_per_user(&self, top: usize) -> Result<Vec<(String, u64)>, QueueError> {
        let mut conn = self.connection().await?;
        let mut per_user: Vec<(String, u64)> = conn.hgetall(self.keys().waiting_users()).await?;
        per_user.sort_unstable_by(|(a_user, a), (b_user, b)| b.cmp(a).then_with(|| a_user.cmp(b_user)));
        per_user.truncate(top);
        Ok(per_user)
    }

    /// Completions in each of the last `minutes` minutes, oldest first.
    pub async fn completions_per_minute(&self, minutes: i64) -> Result<Vec<u64>, QueueError> {
        let mut conn = self.connection().await?;
        let now_minute = chrono::Utc::now().timestamp() / 60;
        let keys: Vec<String> = (0..minutes).rev().map(|back| self.keys().throughput(now_minute - back)).collect();
        let counts: Vec<Option<u64>> = redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
        Ok(counts.into_iter().map(|c| c.unwrap_or(0)).collect())
    }

    /// Durations (ms) of the most recently completed jobs still kept.
    pub async fn recent_durations_ms(&self, sample: usize) -> Result<Vec<i64>, QueueError> {
        let ids = self.job_ids_in_state(JobState::Completed, sample).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.connection().await?;
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hget(self.keys().job(id), "duration_ms");
        }
        let durations: Vec<Option<i64>> = pipe.query_async(&mut conn).await?;
        Ok(durations.into_iter().flatten().collect())
    }

    /// Redis's own memory figures and eviction policy, and how many keys it evicted.
    pub async fn redis_memory(&self) -> Result<RedisMemory, QueueError> {
        // Two sections in two commands: INFO takes several at once only from Redis 7.
        let (memory, stats) = (self.info_section("memory").await?, self.info_section("stats").await?);
        let field = |info: &str, name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
                .map(|v| v.trim().to_string())
        };
        let number = |info: &str, name: &str| field(info, name).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(RedisMemory {
            used_bytes: number(&memory, "used_memory"),
            max_bytes: number(&memory, "maxmemory"),
            policy: field(&memory, "maxmemory_policy").unwrap_or_default(),
            evicted_keys: number(&stats, "evicted_keys"),
        })
    }

    /// One section of INFO, from the node that holds docqueue's keys (on a cluster, the
    /// one whose memory they use).
    async fn info_section(&self, section: &str) -> Result<String, QueueError> {
        let mut info = redis::cmd("INFO");
        info.arg(section);
        let reply = self.backend.query_node_of(self.keys().prefix(), info).await?;
        Ok(redis::from_redis_value(reply).map_err(redis::RedisError::from)?)
    }

    /// The job that has waited longest for a worker since it (last) entered the queue.
    pub async fn oldest_waiting(&self) -> Result<Option<OldestWaiting>, QueueError> {
        let mut conn = self.connection().await?;
        let oldest: Option<(String, i64)> =
            self.invocation(&self.scripts.oldest_waiting).invoke_async(&mut conn).await?;
        Ok(oldest.map(|(job_id, waited_ms)| OldestWaiting { job_id, waited_ms: waited_ms.max(0) as u64 }))
    }

    /// Removes one job's record from Redis (before it is sent round again).
    pub async fn forget_job(&self, job_id: &str) -> Result<(), QueueError> {
        let mut conn = self.connection().await?;
        let mut pipe = redis::pipe();
        // A waiting job is in no state's set: only finished jobs are sent round again.
        for state in JobState::ALL.into_iter().filter(|s| *s != JobState::Queued) {
            pipe.zrem(self.keys().state_set(state), job_id).ignore();
        }
        pipe.del(self.keys().job(job_id)).ignore();
        let _: () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    /// The shared histograms (statistics.rs): for each, bucket -> count, and the sum.
    pub async fn histograms(&self) -> Result<Vec<(String, HashMap<String, f64>)>, QueueError> {
        self.flush_statistics().await?;
        let mut conn = self.connection().await?;
        let types: Vec<String> = conn.smembers(self.keys().histogram_types()).await?;
        let mut names: Vec<String> = types.iter().map(|t| format!("duration:{t}")).collect();
        names.push("wait".into());
        let mut out = Vec::new();
        for name in names {
            let fields: HashMap<String, f64> = conn.hgetall(self.keys().histogram(&name)).await?;
            out.push((name, fields));
        }
        Ok(out)
    }
}
