//! What an operator sees first: the queue's state in one structure, shared by the
//! admin API and the dashboard.

use serde::Serialize;

use crate::error::AppError;
use crate::queue::{OldestWaiting, Queue, StateCounts, WorkerInfo};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Throughput {
    /// Completed jobs per minute, averaged over the window.
    pub last_1m: f64,
    pub last_5m: f64,
    pub last_15m: f64,
    /// Completions in each of the last 30 minutes, oldest first (the sparkline).
    pub per_minute: Vec<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProcessingTime {
    pub sample: usize,
    pub average_ms: Option<f64>,
    pub p95_ms: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserQueue {
    pub user_id: String,
    pub queued: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Overview {
    pub counts: StateCounts,
    pub paused: bool,
    pub queued_per_user: Vec<UserQueue>,
    pub workers: Vec<WorkerInfo>,
    pub throughput: Throughput,
    pub processing_time: ProcessingTime,
    /// The waiting job that has waited longest (None: nothing waits).
    pub oldest_waiting: Option<OldestWaiting>,
    pub redis_used_memory_bytes: u64,
    /// 0: no limit.
    pub redis_maxmemory_bytes: u64,
    pub redis_maxmemory_policy: String,
    pub redis_evicted_keys: u64,
    /// The key prefix this process uses (`redis.prefix`): workers on another prefix
    /// never see these jobs.
    pub redis_prefix: String,
    pub totals: std::collections::HashMap<String, u64>,
}

pub async fn gather(queue: &Queue) -> Result<Overview, AppError> {
    let counts = queue.counts().await?;
    let paused = queue.is_paused().await?;
    let queued_per_user =
        queue.queued_per_user(20).await?.into_iter().map(|(user_id, queued)| UserQueue { user_id, queued }).collect();
    let workers = queue.live_workers().await?;
    let per_minute = queue.completions_per_minute(30).await?;
    let window = |n: usize| per_minute.iter().rev().take(n).sum::<u64>() as f64 / n as f64;
    let throughput =
        Throughput { last_1m: window(1), last_5m: window(5), last_15m: window(15), per_minute: per_minute.clone() };
    let mut durations = queue.recent_durations_ms(200).await?;
    durations.sort_unstable();
    let processing_time = ProcessingTime {
        sample: durations.len(),
        average_ms: (!durations.is_empty()).then(|| durations.iter().sum::<i64>() as f64 / durations.len() as f64),
        p95_ms: durations.get((durations.len() as f64 * 0.95).ceil() as usize).or(durations.last()).copied(),
    };
    let oldest_waiting = queue.oldest_waiting().await?;
    let memory = queue.redis_memory().await?;
    let totals = queue.stats().await?;
    Ok(Overview {
        counts,
        paused,
        queued_per_user,
        workers,
        throughput,
        processing_time,
        oldest_waiting,
        redis_used_memory_bytes: memory.used_bytes,
        redis_maxmemory_bytes: memory.max_bytes,
        redis_maxmemory_policy: memory.policy,
        redis_evicted_keys: memory.evicted_keys,
        redis_prefix: queue.keys().prefix().to_string(),
        totals,
    })
}
