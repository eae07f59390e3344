//! The queue's shared histograms (wait, and duration per content type) and the ETA's
//! moving averages of speed, summed up in each process and added to Redis in one
//! script call every `FLUSH_INTERVAL`.
//!
//! The claim and complete scripts used to update them one job at a time: nine Redis
//! commands per job, for figures nobody reads per job. Every reader in this process
//! (`/metrics`, the ETA) flushes first, so a process sees its own jobs at once and
//! another process's within the interval. The counts (totals, completions per minute)
//! stay in the scripts: they are one command each and must be exact at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use super::{ClaimedJob, Queue, QueueError};

/// How long observations wait in the process before they are added to Redis.
const FLUSH_INTERVAL: Duration = Duration::from_millis(250);
/// Upper bounds (seconds) of the histograms' buckets; the rest go to `+Inf`.
const HISTOGRAM_BOUNDS: [f64; 12] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

/// Observations not yet in Redis, in the shape `lua/record_statistics.lua` reads.
#[derive(Debug, Default, Serialize)]
struct Pending {
    /// Histogram name (`wait`, `duration:<content type>`) → bucket → count, and `sum`.
    histograms: BTreeMap<String, BTreeMap<String, f64>>,
    /// Content types that have a duration histogram.
    types: BTreeSet<String>,
    /// ETA field (content type, or `*` for all) → (observations, their mean ms per KiB).
    eta: BTreeMap<String, (u64, f64)>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.histograms.is_empty()
    }

    fn observe(&mut self, histogram: String, seconds: f64) {
        let bucket = HISTOGRAM_BOUNDS.iter().find(|bound| seconds <= **bound).map_or("+Inf".into(), f64::to_string);
        let buckets = self.histograms.entry(histogram).or_default();
        *buckets.entry(bucket).or_default() += 1.0;
        *buckets.entry("sum".into()).or_default() += seconds;
    }
}

/// A process's statistics on their way to Redis.
#[derive(Default)]
pub(super) struct Statistics {
    pending: Mutex<Pending>,
    flush_scheduled: AtomicBool,
}

impl Statistics {
    fn record(&self, queue: &Queue, add: impl FnOnce(&mut Pending)) {
        add(&mut self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if !self.flush_scheduled.swap(true, Ordering::AcqRel) {
            let queue = queue.clone();
            tokio::spawn(async move {
                tokio::time::sleep(FLUSH_INTERVAL).await;
                if let Err(err) = queue.flush_statistics().await {
                    log::warn!("queue statistics not recorded: {err}");
                }
            });
        }
    }

    fn take(&self) -> Pending {
        self.flush_scheduled.store(false, Ordering::Release);
        std::mem::take(&mut self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Queue {
    /// A job's first claim: how long it waited for a worker.
    pub(super) fn record_claim(&self, job: &ClaimedJob) {
        if job.attempts != 1 {
            return;
        }
        let waited = (job.started_at_ms - job.enqueued_at_ms).max(0) as f64 / 1000.0;
        self.statistics.record(self, |pending| pending.observe("wait".into(), waited));
    }

    /// A completion at `finished_at_ms` (Redis's clock, as the job's start is).
    pub(super) fn record_completion(&self, job: &ClaimedJob, finished_at_ms: i64) {
        let took_ms = (finished_at_ms - job.started_at_ms).max(0) as f64;
        let content_type = if job.content_type.is_empty() { "unknown" } else { job.content_type.as_str() };
        // Speed in ms per KiB (at least 1 KiB), for the ETA of documents like it.
        let rate = took_ms / (job.size_bytes as f64 / 1024.0).max(1.0);
        self.statistics.record(self, |pending| {
            pending.observe(format!("duration:{content_type}"), took_ms / 1000.0);
            pending.types.insert(content_type.to_string());
            for field in [content_type, "*"] {
                let (n, mean) = pending.eta.entry(field.to_string()).or_default();
                *n += 1;
                *mean += (rate - *mean) / *n as f64;
            }
        });
    }

    /// Adds this process's pending observations to Redis now.
    pub async fn flush_statistics(&self) -> Result<(), QueueError> {
        let pending = self.statistics.take();
        if pending.is_empty() {
            return Ok(());
        }
        let payload = serde_json::to_string(&pending).map_err(|err| QueueError::Reply(err.to_string()))?;
        let mut conn = self.connection().await?;
        let () = self.invocation(&self.scripts.record_statistics).arg(payload).invoke_async(&mut conn).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them_and_in_the_sum() {
        let mut pending = Pending::default();
        for seconds in [0.01, 0.05, 0.3, 400.0] {
            pending.observe("wait".into(), seconds);
        }
        let wait = &pending.histograms["wait"];
        assert_eq!(wait["0.05"], 2.0);
        assert_eq!(wait["0.5"], 1.0);
        assert_eq!(wait["+Inf"], 1.0);
        assert!((wait["sum"] - 400.36).abs() < 1e-9);
    }
}
