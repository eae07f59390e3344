//! A small file's read, begun at the claim from what the queue knows of the job, beside
//! the job's start row and duplicate check instead of after them: at one worker those
//! two steps, each a hop to another thread or to Redis, were a third of a small
//! document's processing time. A read ahead that goes unused (the row moved on, or the
//! document copies a twin) is stopped once it has had a moment to end by itself: its
//! extractor process, killed mid-read, would cost a new one.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::extractor::{Extraction, Extractor, ExtractorError, ReadProgress};

/// Files up to this size are read ahead: the size the extractor takes in one write.
/// For a larger file the steps it would overlap are a small part of its time.
pub const READ_AHEAD_BYTES: u64 = 256 * 1024;
/// How long an unused read ahead may run on before its extractor is killed.
const UNUSED_GRACE: Duration = Duration::from_millis(200);

pub struct ReadAhead {
    file: PathBuf,
    content_type: String,
    began: Instant,
    read: JoinHandle<Extraction>,
    progress: mpsc::UnboundedReceiver<ReadProgress>,
    /// Dropped with the read ahead: the read stops (after `UNUSED_GRACE`).
    _in_use: oneshot::Sender<()>,
}

impl ReadAhead {
    /// Starts reading `file` in an extractor process, as `Extractor::run` does; the
    /// read stops when `cancelled` resolves, at `deadline`, or when this is dropped.
    pub fn begin(
        extractor: Extractor,
        owner: String,
        file: PathBuf,
        content_type: String,
        cancelled: impl Future<Output = ()> + Send + 'static,
        deadline: tokio::time::Instant,
    ) -> ReadAhead {
        let (progress_tx, progress) = mpsc::unbounded_channel();
        let (in_use, unused) = oneshot::channel::<()>();
        let stop = async move {
            tokio::select! {
                () = cancelled => {}
                _ = unused => tokio::time::sleep(UNUSED_GRACE).await,
            }
        };
        let (path, kind) = (file.clone(), content_type.clone());
        let read = tokio::spawn(async move {
            let mut on_progress = |read: ReadProgress| {
                let _ = progress_tx.send(read);
            };
            extractor.run(&owner, &path, &kind, &mut on_progress, stop, deadline).await
        });
        ReadAhead { file, content_type, began: Instant::now(), read, progress, _in_use: in_use }
    }

    /// Whether this is the read the job's row asks for.
    pub fn reads(&self, file: &Path, content_type: &str) -> bool {
        self.file == file && self.content_type == content_type
    }

    /// When the read began.
    pub fn began(&self) -> Instant {
        self.began
    }

    /// Waits for the read, passing on its progress in order.
    pub async fn finish(self, on_progress: &mut (dyn FnMut(ReadProgress) + Send)) -> Extraction {
        let ReadAhead { mut read, mut progress, _in_use, .. } = self;
        let joined = loop {
            tokio::select! {
                biased;
                Some(update) = progress.recv() => on_progress(update),
                joined = &mut read => break joined,
            }
        };
        while let Ok(update) = progress.try_recv() {
            on_progress(update);
        }
        joined.unwrap_or_else(|err| {
            let reason = format!("the read of the file crashed: {err}");
            Extraction::not_started(ExtractorError::MachineTrouble(reason.clone()), reason)
        })
    }
}
