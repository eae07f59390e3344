//! Coalesces a job's progress updates to at most `max_per_sec` deliveries, keeping the
//! percentage monotone and delivering every stage change and the final value.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::processing::processor::{ProgressFn, ProgressUpdate};

/// Starts the pump: returns the callback for the processor and the task that delivers.
/// Drop every clone of the callback, then await the task to flush the last update.
pub fn spawn_pump<F, Fut>(max_per_sec: u32, deliver: F) -> (ProgressFn, JoinHandle<()>)
where
    F: Fn(ProgressUpdate) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel::<ProgressUpdate>();
    let interval = Duration::from_secs_f64(1.0 / f64::from(max_per_sec.max(1)));
    let task = tokio::spawn(pump(rx, interval, deliver));
    let callback: ProgressFn = Arc::new(move |update| {
        let _ = tx.send(update);
    });
    (callback, task)
}

async fn pump<F, Fut>(mut rx: mpsc::UnboundedReceiver<ProgressUpdate>, interval: Duration, deliver: F)
where
    F: Fn(ProgressUpdate) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut last: Option<(ProgressUpdate, Instant)> = None;
    let mut pending: Option<ProgressUpdate> = None;
    loop {
        let due = pending.map(|_| last.map_or_else(Instant::now, |(_, at)| at + interval));
        tokio::select! {
            received = rx.recv() => {
                let Some(update) = received else { break };
                let newest = pending.or(last.map(|(u, _)| u));
                let update = ProgressUpdate {
                    stage: update.stage,
                    percent: update.percent.max(newest.map_or(0, |u| u.percent)),
                };
                let stage_changed = newest.is_none_or(|u| u.stage != update.stage);
                if newest == Some(update) {
                    continue;
                }
                if stage_changed {
                    deliver(update).await;
                    last = Some((update, Instant::now()));
                    pending = None;
                } else {
                    pending = Some(update);
                }
            }
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                if let Some(update) = pending.take() {
                    deliver(update).await;
                    last = Some((update, Instant::now()));
                }
            }
        }
    }
    if let Some(update) = pending {
        deliver(update).await;
    }
}
