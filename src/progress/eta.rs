//! Estimated time to done, from moving averages of processing speed kept in Redis
//! (updated by every completion, see complete.lua), so all processes share them.

use std::collections::HashMap;

use redis::AsyncCommands;

use crate::queue::{Queue, QueueError};

/// Fixed cost of a job (claim, rows, storing) on top of its size-proportional work.
const OVERHEAD_MS: f64 = 200.0;
/// Before any completion is seen: a guess of 2 ms per KiB.
const DEFAULT_MS_PER_KIB: f64 = 2.0;

#[derive(Debug, Clone, Default)]
pub struct EtaModel {
    ms_per_kib: HashMap<String, f64>,
    workers: usize,
}

impl EtaModel {
    pub async fn load(queue: &Queue, workers: usize) -> Result<EtaModel, QueueError> {
        let mut conn = queue.connection().await?;
        let rates: HashMap<String, f64> = conn.hgetall(queue.keys().eta()).await?;
        Ok(EtaModel { ms_per_kib: rates, workers: workers.max(1) })
    }

    /// How long processing a document of this type and size takes, in ms.
    pub fn processing_ms(&self, content_type: &str, size_bytes: i64) -> f64 {
        let rate = self
            .ms_per_kib
            .get(content_type)
            .or_else(|| self.ms_per_kib.get("*"))
            .copied()
            .unwrap_or(DEFAULT_MS_PER_KIB);
        OVERHEAD_MS + rate * (size_bytes.max(0) as f64 / 1024.0)
    }

    /// A running document: what is left of its estimate, by its progress.
    pub fn remaining_seconds(&self, content_type: &str, size_bytes: i64, progress: i32) -> f64 {
        let left = 1.0 - f64::from(progress.clamp(0, 100)) / 100.0;
        round(self.processing_ms(content_type, size_bytes) * left / 1000.0)
    }

    /// A waiting document at `position`: the jobs ahead share the workers, then its own.
    /// The jobs ahead are taken to be like this one.
    pub fn queued_seconds(&self, content_type: &str, size_bytes: i64, position: u64) -> f64 {
        let own = self.processing_ms(content_type, size_bytes);
        let rounds_ahead = (position.saturating_sub(1) as f64 / self.workers as f64).ceil();
        round((rounds_ahead * own + own) / 1000.0)
    }
}

fn round(seconds: f64) -> f64 {
    (seconds * 10.0).round() / 10.0
}
