//! Coalesces a job's progress updates to at most `max_per_sec` deliveries, keeping the
//! percentage monotone and delivering every stage change, every OCR page (each takes
//! seconds, and users watch a scan go page by page) and the final value. Stage changes
//! that arrive while a delivery is under way go out together in the next one (a short
//! document passes chunking, embedding and storing in well under a millisecond).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::processing::processor::{ProgressFn, ProgressUpdate};

/// Starts the pump: returns the callback for the processor and the task that delivers.
/// Each delivery is one or more updates, in order. Drop every clone of the callback,
/// then await the task to flush the last update.
pub fn spawn_pump<F, Fut>(max_per_sec: u32, deliver: F) -> (ProgressFn, JoinHandle<()>)
where
    F: Fn(Vec<ProgressUpdate>) -> Fut + Send + 'static,
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

/// What the pump has delivered and holds back.
#[derive(Default)]
struct Coalescer {
    last: Option<(ProgressUpdate, Instant)>,
    pending: Option<ProgressUpdate>,
}

impl Coalescer {
    /// Takes in one update; returns it (raised to the percentage reached) when it is a
    /// stage change, to deliver now, or holds it for the rate.
    fn take(&mut self, update: ProgressUpdate, now: Instant) -> Option<ProgressUpdate> {
        let newest = self.pending.or(self.last.map(|(u, _)| u));
        let update = ProgressUpdate {
            stage: update.stage,
            percent: update.percent.max(newest.map_or(0, |u| u.percent)),
            ocr_pages: update.ocr_pages,
        };
        if newest == Some(update) {
            return None;
        }
        if newest.is_none_or(|u| u.stage != update.stage || u.ocr_pages != update.ocr_pages) {
            self.last = Some((update, now));
            self.pending = None;
            Some(update)
        } else {
            self.pending = Some(update);
            None
        }
    }

    /// When the update held for the rate may go out: `interval` after the last delivery.
    fn due(&self, interval: Duration) -> Option<Instant> {
        self.pending.map(|_| self.last.map_or_else(Instant::now, |(_, at)| at + interval))
    }

    /// The update held for the rate, taken out as delivered `now`.
    fn release(&mut self, now: Instant) -> Option<ProgressUpdate> {
        let update = self.pending.take()?;
        self.last = Some((update, now));
        Some(update)
    }
}

async fn pump<F, Fut>(mut rx: mpsc::UnboundedReceiver<ProgressUpdate>, interval: Duration, deliver: F)
where
    F: Fn(Vec<ProgressUpdate>) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut state = Coalescer::default();
    loop {
        let due = state.due(interval);
        tokio::select! {
            received = rx.recv() => {
                let Some(update) = received else { break };
                let now = Instant::now();
                let mut batch: Vec<ProgressUpdate> = state.take(update, now).into_iter().collect();
                // What arrived during the last delivery goes out in this one.
                while let Ok(update) = rx.try_recv() {
                    batch.extend(state.take(update, now));
                }
                if !batch.is_empty() {
                    deliver(batch).await;
                }
            }
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                if let Some(update) = state.release(Instant::now()) {
                    deliver(vec![update]).await;
                }
            }
        }
    }
    if let Some(update) = state.release(Instant::now()) {
        deliver(vec![update]).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::processing::Stage;

    /// Each delivery: its updates and when it was made.
    type Delivered = Arc<Mutex<Vec<(Vec<ProgressUpdate>, Instant)>>>;

    /// A pump at 10 deliveries a second that records what it delivers and when; each
    /// delivery takes `delivery_time`.
    fn recording_pump_taking(delivery_time: Duration) -> (ProgressFn, JoinHandle<()>, Delivered) {
        let delivered = Delivered::default();
        let sink = delivered.clone();
        let (progress, task) = spawn_pump(10, move |updates| {
            sink.lock().unwrap().push((updates, Instant::now()));
            tokio::time::sleep(delivery_time)
        });
        (progress, task, delivered)
    }

    fn recording_pump() -> (ProgressFn, JoinHandle<()>, Delivered) {
        recording_pump_taking(Duration::ZERO)
    }

    fn at(stage: Stage, percent: u8) -> ProgressUpdate {
        ProgressUpdate { stage, percent, ocr_pages: None }
    }

    fn updates(delivered: &Delivered) -> Vec<ProgressUpdate> {
        delivered.lock().unwrap().iter().flat_map(|(updates, _)| updates.clone()).collect()
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
        assert_eq!(delivered.last().unwrap().0, vec![at(Stage::Embedding, 100)]);
    }

    #[tokio::test(start_paused = true)]
    async fn stage_changes_made_during_a_delivery_go_out_together_in_the_next() {
        let (progress, task, delivered) = recording_pump_taking(Duration::from_millis(5));
        progress(at(Stage::Chunking, 40));
        tokio::task::yield_now().await;
        // The chunking delivery is under way: the rest of a short document arrives.
        for update in
            [at(Stage::Chunking, 50), at(Stage::Embedding, 50), at(Stage::Embedding, 95), at(Stage::Storing, 95)]
        {
            progress(update);
        }
        drop(progress);
        task.await.unwrap();
        let batches: Vec<Vec<ProgressUpdate>> = delivered.lock().unwrap().iter().map(|(u, _)| u.clone()).collect();
        assert_eq!(
            batches,
            vec![vec![at(Stage::Chunking, 40)], vec![at(Stage::Embedding, 50), at(Stage::Storing, 95)]],
            "every stage change, in order, in two deliveries"
        );
    }
}
