//! How an extractor run ended: the kind `/metrics` counts, the report the job's story
//! keeps, and the error the pipeline turns into the document's reason.

use serde::Serialize;

use crate::db::attempts::ExtractorRun;
use crate::job_state::JobState;

/// The kinds of end, as `/metrics` labels them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtractorOutcome {
    /// The text came back.
    Ok,
    /// The reader ran to the end and found the document unreadable (damaged, empty, …).
    Unreadable,
    MemoryLimit,
    CpuLimit,
    /// Killed by a signal or stopped abnormally (stack overflow, panic, broken output).
    Crash,
    /// Killed because the job was cancelled or handed back.
    Cancelled,
    /// Killed at the wall-clock deadline (`processing.max_seconds`).
    TimedOut,
    /// Killed by something outside docqueue (the machine's OOM killer, an operator).
    Killed,
    /// The process could not be started.
    NotStarted,
}

impl ExtractorOutcome {
    pub const ALL: [ExtractorOutcome; 9] = [
        ExtractorOutcome::Ok,
        ExtractorOutcome::Unreadable,
        ExtractorOutcome::MemoryLimit,
        ExtractorOutcome::CpuLimit,
        ExtractorOutcome::Crash,
        ExtractorOutcome::Cancelled,
        ExtractorOutcome::TimedOut,
        ExtractorOutcome::Killed,
        ExtractorOutcome::NotStarted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExtractorOutcome::Ok => "ok",
            ExtractorOutcome::Unreadable => "unreadable",
            ExtractorOutcome::MemoryLimit => "memory_limit",
            ExtractorOutcome::CpuLimit => "cpu_limit",
            ExtractorOutcome::Crash => "crash",
            // Killed because its job was cancelled: named after the job's state.
            ExtractorOutcome::Cancelled => JobState::Cancelled.as_str(),
            ExtractorOutcome::TimedOut => "timed_out",
            ExtractorOutcome::Killed => "killed",
            ExtractorOutcome::NotStarted => "not_started",
        }
    }
}

/// What the kernel said about one extractor process when it ended.
#[derive(Debug, Clone, Serialize)]
pub struct ExtractorReport {
    pub outcome: ExtractorOutcome,
    /// "exit 0", "signal 9 (SIGKILL)", or why it did not start.
    pub exit: String,
    pub peak_memory_kb: i64,
    pub cpu_ms: i64,
    pub pid: Option<u32>,
}

impl ExtractorReport {
    /// No process ran: `why` says what stopped it.
    pub fn not_started(why: String) -> ExtractorReport {
        ExtractorReport { outcome: ExtractorOutcome::NotStarted, exit: why, peak_memory_kb: 0, cpu_ms: 0, pid: None }
    }

    /// What the attempt's row keeps of it.
    pub fn run(&self) -> ExtractorRun {
        ExtractorRun {
            outcome: self.outcome.as_str(),
            exit: self.exit.clone(),
            peak_memory_kb: self.peak_memory_kb,
            cpu_ms: self.cpu_ms,
            pid: self.pid,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractorError {
    /// The job was cancelled; the process was killed.
    #[error("the job was cancelled")]
    Cancelled,
    /// The file's doing: it would fail the same way again. The message is for the user.
    #[error("{0}")]
    Permanent(String),
    /// Possibly the machine's doing (the process could not start, or was killed from
    /// outside): worth one more try.
    #[error("{0}")]
    MachineTrouble(String),
}

/// "the PDF", "the CSV file": how messages name the document being read.
pub fn document_kind(content_type: &str) -> &'static str {
    let media_type = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match media_type.as_str() {
        crate::processing::extract::PDF => "the PDF",
        crate::processing::extract::DOCX => "the DOCX file",
        crate::processing::extract::HTML => "the HTML file",
        crate::processing::extract::CSV => "the CSV file",
        crate::processing::extract::MARKDOWN | crate::processing::extract::PLAIN_TEXT => "the text file",
        _ if media_type.starts_with("image/") => "the image",
        _ => "the file",
    }
}
