//! How long each step of a job takes, for `/metrics`
//! (`docqueue_job_step_seconds{step}`): where a document's processing time goes, for
//! operators and for `scripts/bench.sh e2e`. The worker times the steps around the
//! processor (the row's start, the end in Redis); a processor times its own.

use std::time::Instant;

use prometheus::{HistogramOpts, HistogramVec, Registry};

/// The steps of a job, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The row marked `processing` (and the attempt recorded) before any work.
    StartRow,
    /// The look for a completed document with the same content, and the claim on it.
    DuplicateCheck,
    /// Reading the text in an extractor process. A small file's read begins at the
    /// claim (`processing::read_ahead`), beside the start row and the duplicate check.
    Extract,
    /// Chunking and embedding.
    ChunkEmbed,
    /// The chunks written to the database.
    Store,
    /// The end recorded in Redis (and the worker's next job claimed).
    End,
}

impl Step {
    pub const ALL: [Step; 6] =
        [Step::StartRow, Step::DuplicateCheck, Step::Extract, Step::ChunkEmbed, Step::Store, Step::End];

    pub fn name(self) -> &'static str {
        match self {
            Step::StartRow => "start_row",
            Step::DuplicateCheck => "duplicate_check",
            Step::Extract => "extract",
            Step::ChunkEmbed => "chunk_embed",
            Step::Store => "store",
            Step::End => "end",
        }
    }
}

/// A cheap handle; clone it freely.
#[derive(Clone)]
pub struct StepTimes {
    seconds: HistogramVec,
}

impl StepTimes {
    pub fn new() -> StepTimes {
        // Small documents take a few milliseconds in all: buckets from 100 µs.
        let buckets = vec![0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5, 10.0, 60.0];
        let seconds = HistogramVec::new(
            HistogramOpts::new("docqueue_job_step_seconds", "Time this process's jobs spent in each step, by step")
                .buckets(buckets),
            &["step"],
        )
        .expect("valid metric");
        StepTimes { seconds }
    }

    /// Records `step` as having run from `since` until now.
    pub fn took(&self, step: Step, since: Instant) {
        self.seconds.with_label_values(&[step.name()]).observe(since.elapsed().as_secs_f64());
    }

    pub fn register(&self, registry: &Registry) {
        registry.register(Box::new(self.seconds.clone())).expect("registered once");
    }
}

impl Default for StepTimes {
    fn default() -> Self {
        StepTimes::new()
    }
}
