//! The contract between a worker and the work: a `Processor` gets the document, a
//! progress callback and a cancellation check, and says how it went. The real
//! pipeline (`processing::Pipeline`) is one; tests plug in others.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::watch;

use crate::db::models::Document;
use crate::processing::extract::OcrPages;
use crate::processing::read_ahead::ReadAhead;
use crate::processing::step_times::{Step, StepTimes};
use crate::queue::ClaimedJob;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The steps of processing a document, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Extracting,
    Chunking,
    Embedding,
    Storing,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Extracting => "extracting",
            Stage::Chunking => "chunking",
            Stage::Embedding => "embedding",
            Stage::Storing => "storing",
        }
    }
}

/// Why a running job was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// The owner or an admin cancelled it.
    Requested,
    /// The worker lost its lease: another worker may own the job now.
    LeaseLost,
    /// The process is shutting down and the grace period is over.
    Shutdown,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProcessError {
    /// Worth another try (a timeout, an unreachable service).
    #[error("{0}")]
    Transient(String),
    /// Will never succeed (unreadable or unsupported content); the message is for the user.
    #[error("{0}")]
    Permanent(String),
    #[error("the job was cancelled")]
    Cancelled,
    /// Cannot go on before the job `until_ended` has ended (an identical document in
    /// flight, whose chunks this one will copy): the job waits in the queue, not in a
    /// worker, and the attempt does not count.
    #[error("waiting for job {until_ended} to end")]
    Deferred { until_ended: String },
}

/// A failure's reason or a completion's warning is kept in the row and the job hash,
/// sent in events and in every snapshot. A reader's message may quote what a hostile
/// file holds (a 1 MB attribute from a 2 KB spreadsheet), so it is cut to this many
/// characters.
const MAX_MESSAGE_CHARS: usize = 1_000;

/// `text` cut to [`MAX_MESSAGE_CHARS`], an ellipsis (the last of them) marking the cut.
pub fn bounded_message(mut text: String) -> String {
    if text.chars().count() <= MAX_MESSAGE_CHARS {
        return text;
    }
    if let Some((cut, _)) = text.char_indices().nth(MAX_MESSAGE_CHARS - 1) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

impl ProcessError {
    /// The same error, its reason cut by [`bounded_message`].
    pub fn bounded(self) -> ProcessError {
        match self {
            ProcessError::Transient(reason) => ProcessError::Transient(bounded_message(reason)),
            ProcessError::Permanent(reason) => ProcessError::Permanent(bounded_message(reason)),
            other => other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    pub chunk_count: i32,
    /// The completed document whose chunks were copied, when the same content had
    /// been processed with the same settings.
    pub reused_from: Option<String>,
    /// What the reader had to leave out, told to the user with the completion.
    pub warning: Option<String>,
}

impl Processed {
    /// The same result, its warning cut by [`bounded_message`].
    pub fn bounded(self) -> Processed {
        Processed { warning: self.warning.map(bounded_message), ..self }
    }
}

/// A progress update: overall percentage (0–100) within a stage, and while OCR runs,
/// how many of its pages it has recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressUpdate {
    pub stage: Stage,
    pub percent: u8,
    pub ocr_pages: Option<OcrPages>,
}

pub type ProgressFn = Arc<dyn Fn(ProgressUpdate) + Send + Sync>;

/// What a processor receives for one job.
#[derive(Clone)]
pub struct JobContext {
    pub document: Document,
    pub attempt: u32,
    progress: ProgressFn,
    cancel: watch::Receiver<Option<CancelReason>>,
    step_times: StepTimes,
    /// The file's read, when it began at the claim (`Processor::read_ahead`).
    read_ahead: Arc<Mutex<Option<ReadAhead>>>,
}

impl JobContext {
    pub fn new(
        document: Document,
        attempt: u32,
        progress: ProgressFn,
        cancel: watch::Receiver<Option<CancelReason>>,
        step_times: StepTimes,
    ) -> JobContext {
        JobContext { document, attempt, progress, cancel, step_times, read_ahead: Default::default() }
    }

    pub fn with_read_ahead(self, read_ahead: Option<ReadAhead>) -> JobContext {
        JobContext { read_ahead: Arc::new(Mutex::new(read_ahead)), ..self }
    }

    /// The read begun at the claim, once; dropped unused, it stops.
    pub fn take_read_ahead(&self) -> Option<ReadAhead> {
        self.read_ahead.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Records how long one of the job's steps took (`/metrics`).
    pub fn step_took(&self, step: Step, since: std::time::Instant) {
        self.step_times.took(step, since);
    }

    /// Reports progress; callable from any thread, cheap (updates are coalesced later).
    pub fn on_progress(&self, stage: Stage, percent: u8) {
        (self.progress)(ProgressUpdate { stage, percent: percent.min(100), ocr_pages: None });
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.borrow().is_some()
    }

    /// Resolves when the job is asked to stop (never, if nobody can ask any more).
    pub fn cancelled(&self) -> impl Future<Output = ()> + Send + 'static {
        cancellation(self.cancel.clone())
    }

    /// A check to hand to blocking code (extraction, embedding loops).
    pub fn cancel_check(&self) -> impl Fn() -> bool + Send + Sync + 'static {
        let cancel = self.cancel.clone();
        move || cancel.borrow().is_some()
    }

    /// The progress callback, to hand to blocking code.
    pub fn progress_fn(&self) -> ProgressFn {
        self.progress.clone()
    }
}

/// Resolves when the job is asked to stop (never, if nobody can ask any more).
pub async fn cancellation(mut cancel: watch::Receiver<Option<CancelReason>>) {
    if cancel.wait_for(|reason| reason.is_some()).await.is_err() {
        std::future::pending::<()>().await;
    }
}

pub trait Processor: Send + Sync + 'static {
    fn process(&self, ctx: JobContext) -> BoxFuture<Result<Processed, ProcessError>>;

    /// Begins reading the job's file from what its claim says, before its row is marked;
    /// `process` finds the read in its context. None: the read waits for `process`.
    fn read_ahead(&self, _job: &ClaimedJob, _cancel: watch::Receiver<Option<CancelReason>>) -> Option<ReadAhead> {
        None
    }

    /// Gets ready for the first job; called once on the event loop when the worker pool
    /// starts.
    fn warm_up(&self) {}
}

#[cfg(test)]
mod tests {
    use super::{bounded_message, MAX_MESSAGE_CHARS};

    #[test]
    fn a_message_is_cut_to_its_bound_with_an_ellipsis_and_a_short_one_kept() {
        let fits = "é".repeat(MAX_MESSAGE_CHARS);
        assert_eq!(bounded_message(fits.clone()), fits);
        let cut = bounded_message("é".repeat(MAX_MESSAGE_CHARS + 1));
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS);
        assert!(cut.ends_with("é…"), "{cut}");
    }
}
