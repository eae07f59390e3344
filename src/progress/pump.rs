//! Coalesces a job's progress updates to at most `max_per_sec` deliveries, keeping the
//! percentage monotone and delivering every stage change, every OCR page (each takes
//! seconds, and users watch a scan go page by page) and the final value.

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
                    ocr_pages: update.ocr_pages,
                };
                let stage_changed = newest.is_none_or(|u| u.stage != update.stage || u.ocr_pages != update.ocr_pages);
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::processing::Stage;

    type Delivered = Arc<Mutex<Vec<(ProgressUpdate, Instant)>>>;

    /// A pump at 10 deliveries a second that records what it delivers and when.
    fn recording_pump() -> (ProgressFn, JoinHandle<()>, Delivered) {
        let delivered = Delivered::default();
        let sink = delivered.clone();
        let (progress, task) = spawn_pump(10, move |update| {
            sink.lock().unwrap().push((update, Instant::now()));
            std::future::ready(())
        });
        (progress, task, delivered)
    }

    fn at(stage: Stage, percent: u8) -> ProgressUpdate {
        ProgressUpdate { stage, percent, ocr_pages: None }
    }

    fn updates(delivered: &Delivered) -> Vec<ProgressUpdate> {
        delivered.lock().unwrap().iter().map(|(update, _)| *update).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn the_percentage_never_goes_back_even_across_stages() {
        let (progress, task, delivered) = recording_pump();
        for update in [at(Stage::Extracting, 10), at(Stage::Extracting, 50), at(Stage::Extracting, 30)] {
            progress(update);
        }
        progress(at(Stage::Chunking, 5));
        drop(progress);
        task.await.unwrap();
        // The 50 waiting for its turn gives way to the stage change, which carries it.
        assert_eq!(updates(&delivered), vec![at(Stage::Extracting, 10), at(Stage::Chunking, 50)]);
    }

    #[tokio::test(start_paused = true)]
    async fn every_stage_change_is_delivered_at_once() {
        let (progress, task, delivered) = recording_pump();
        let stages =
            [at(Stage::Extracting, 0), at(Stage::Chunking, 40), at(Stage::Embedding, 60), at(Stage::Storing, 90)];
        let start = Instant::now();
        for update in stages {
            progress(update);
            tokio::task::yield_now().await;
        }
        drop(progress);
        task.await.unwrap();
        assert_eq!(updates(&delivered), stages.to_vec());
        assert!(delivered.lock().unwrap().iter().all(|(_, when)| *when == start), "none waited for the rate");
    }

    #[tokio::test(start_paused = true)]
    async fn the_last_value_is_delivered_when_the_job_ends() {
        let (progress, task, delivered) = recording_pump();
        for percent in 0..=73 {
            progress(at(Stage::Embedding, percent));
        }
        drop(progress);
        task.await.unwrap();
        assert_eq!(updates(&delivered).last(), Some(&at(Stage::Embedding, 73)));
    }

    #[tokio::test(start_paused = true)]
    async fn updates_within_a_stage_are_held_to_the_rate() {
        let (progress, task, delivered) = recording_pump();
        // One update every 10 ms for a second, at 10 deliveries a second.
        for percent in 0..=100 {
            progress(at(Stage::Embedding, percent));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Long enough for the last update to go out on the pump's own clock.
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(progress);
        task.await.unwrap();
        let delivered = delivered.lock().unwrap();
        let gaps: Vec<Duration> = delivered.windows(2).map(|w| w[1].1 - w[0].1).collect();
        assert!(gaps.iter().all(|gap| *gap >= Duration::from_millis(100)), "{gaps:?}");
        assert!((10..=12).contains(&delivered.len()), "{} deliveries", delivered.len());
        assert_eq!(delivered.last().unwrap().0, at(Stage::Embedding, 100));
    }
}
