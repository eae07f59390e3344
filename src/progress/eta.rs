//! Estimated time to done, from moving averages of processing speed kept in Redis
//! (updated from every completion, see queue/statistics.rs), so all processes share them.

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
        queue.flush_statistics().await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn model(rates: &[(&str, f64)], workers: usize) -> EtaModel {
        EtaModel { ms_per_kib: rates.iter().map(|(k, v)| (k.to_string(), *v)).collect(), workers }
    }

    #[test]
    fn the_rate_of_the_type_wins_then_the_overall_one_then_the_guess() {
        let both = model(&[("application/pdf", 10.0), ("*", 4.0)], 1);
        assert_eq!(both.processing_ms("application/pdf", 10 * 1024), 200.0 + 100.0);
        assert_eq!(both.processing_ms("text/plain", 10 * 1024), 200.0 + 40.0);
        assert_eq!(model(&[], 1).processing_ms("text/plain", 10 * 1024), 200.0 + 20.0);
        assert_eq!(model(&[], 1).processing_ms("text/plain", -5), 200.0, "a negative size counts as empty");
    }

    #[test]
    fn a_running_document_has_what_its_progress_leaves() {
        let eta = model(&[("*", 98.0)], 1); // 200 + 98 * 20 = 2160 ms for 20 KiB
        assert_eq!(eta.remaining_seconds("text/plain", 20 * 1024, 0), 2.2);
        assert_eq!(eta.remaining_seconds("text/plain", 20 * 1024, 50), 1.1);
        assert_eq!(eta.remaining_seconds("text/plain", 20 * 1024, 100), 0.0);
        assert_eq!(eta.remaining_seconds("text/plain", 20 * 1024, 140), 0.0);
        assert_eq!(eta.remaining_seconds("text/plain", 20 * 1024, -10), 2.2);
    }

    #[test]
    fn a_waiting_document_waits_for_the_rounds_ahead_of_it() {
        let eta = model(&[("*", 80.0)], 2); // 200 + 80 * 10 = 1 s for 10 KiB
        let seconds = |position| eta.queued_seconds("text/plain", 10 * 1024, position);
        assert_eq!(seconds(0), 1.0);
        assert_eq!(seconds(1), 1.0, "next in line: its own time only");
        assert_eq!(seconds(2), 2.0, "one ahead: one round on two workers");
        assert_eq!(seconds(3), 2.0, "two ahead still share one round");
        assert_eq!(seconds(4), 3.0);
    }
}
