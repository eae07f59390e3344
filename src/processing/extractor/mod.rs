//! Every uploaded file is read in a separate process: `docqueue extract` (the same
//! executable), started per document under kernel limits (`confine`), fed the file on
//! stdin, answering in frames on stdout (`protocol`). A hostile file can make that
//! process crash, hang or bloat; the server only sees it end, kills it on cancel or at
//! the deadline, and fails that one document with the reason. Apache Tika's forking
//! parser is the model.

mod child;
mod confine;
mod outcome;
mod process;
pub mod protocol;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, BufReader};
use tokio::time::Instant;

pub use child::run as run_child;
pub use confine::Confinement;
pub use outcome::{document_kind, ExtractorError, ExtractorOutcome, ExtractorReport};
use process::{signal_name, Ended, Watched};
use protocol::{read_frame, Frame, Sections};

use super::extract::{ExtractLimits, ExtractedText};
use crate::config::ProcessingConfig;

/// The end of the extractor's stderr kept to explain a crash.
const STDERR_TAIL_BYTES: usize = 8 * 1024;
/// How long stderr may stay open after the process ended (a grandchild holding it).
const STDERR_WAIT: Duration = Duration::from_millis(500);

/// Starts extractor processes with one configuration.
#[derive(Debug, Clone)]
pub struct Extractor {
    program: PathBuf,
    confinement: Confinement,
    limits: ExtractLimits,
    max_memory_mb: u64,
    max_cpu_seconds: u64,
    max_seconds: u64,
}

/// One run's result, and what the kernel reported about the process when there was one.
pub struct Extraction {
    pub result: Result<ExtractedText, ExtractorError>,
    pub report: ExtractorReport,
}

impl Extractor {
    /// `processing.extractor_program`, or this executable when it is empty.
    pub fn from_config(config: &ProcessingConfig) -> std::io::Result<Extractor> {
        let program = match config.extractor_program.trim() {
            "" => std::env::current_exe()?,
            path => PathBuf::from(path),
        };
        Ok(Extractor {
            program,
            confinement: Confinement::from(config),
            limits: ExtractLimits::from(config),
            max_memory_mb: config.max_memory_mb,
            max_cpu_seconds: config.max_cpu_seconds,
            max_seconds: config.max_seconds,
        })
    }

    /// Reads `file` (of the sniffed `content_type`) in a new extractor process.
    /// `on_progress(fraction)` follows the reading; when `cancelled` resolves or
    /// `deadline` passes, the process is killed and the run ends at once.
    pub async fn run(
        &self,
        file: &Path,
        content_type: &str,
        on_progress: &mut (dyn FnMut(f32) + Send),
        cancelled: impl Future<Output = ()>,
        deadline: Instant,
    ) -> Extraction {
        let not_started = |error: ExtractorError, exit: String| Extraction {
            result: Err(error),
            report: ExtractorReport { outcome: ExtractorOutcome::NotStarted, exit, peak_memory_kb: 0, cpu_ms: 0 },
        };
        let input = match std::fs::File::open(file) {
            Ok(input) => input,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let reason = "the uploaded file is missing from storage";
                return not_started(ExtractorError::Permanent(reason.into()), reason.into());
            }
            Err(err) => {
                let reason = format!("the uploaded file could not be read: {}", err.kind());
                return not_started(ExtractorError::MachineTrouble(reason.clone()), reason);
            }
        };
        let mut command = self.command(content_type);
        command.stdin(input).stdout(Stdio::piped()).stderr(Stdio::piped());
        self.confinement.apply(&mut command);
        let (mut child, stdout, stderr) = match spawn(&mut command) {
            Ok(started) => started,
            Err(err) => {
                let reason = format!("the extractor process could not be started: {err}");
                return not_started(ExtractorError::MachineTrouble(reason.clone()), reason);
            }
        };
        let stderr_tail = tokio::spawn(read_tail(stderr));

        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        let mut sections = Sections::new(self.limits.max_chars);
        let mut last_frame = None;
        let mut broken = None;
        let mut stopped = None;
        tokio::pin!(cancelled);
        let deadline = tokio::time::sleep_until(deadline);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                frame = read_frame(&mut reader, &mut line) => match frame {
                    Ok(None) => break,
                    Ok(Some(Frame::Progress { fraction })) if last_frame.is_none() => on_progress(fraction),
                    Ok(Some(Frame::Text { page, text, continues })) if last_frame.is_none() => {
                        if !sections.add(page, text, continues) {
                            broken = Some(Broken::TooMuchText);
                            break;
                        }
                    }
                    Ok(Some(frame @ (Frame::Done { .. } | Frame::Unreadable { .. }))) if last_frame.is_none() => {
                        last_frame = Some(frame);
                    }
                    Ok(Some(_)) => {
                        broken = Some(Broken::Protocol("frames after its last one".into()));
                        break;
                    }
                    Err(err) => {
                        broken = Some(Broken::Protocol(err.to_string()));
                        break;
                    }
                },
                () = &mut cancelled => {
                    stopped = Some(Stopped::Cancelled);
                    break;
                }
                () = &mut deadline => {
                    stopped = Some(Stopped::TimedOut);
                    break;
                }
            }
        }
        if stopped.is_some() || broken.is_some() {
            child.kill();
        }
        // Output closed: the process should be gone, but may linger; the same rules hold.
        let ended = tokio::select! {
            ended = child.ended() => ended,
            () = &mut cancelled, if stopped.is_none() => {
                stopped = Some(Stopped::Cancelled);
                child.kill();
                child.ended().await
            }
            () = &mut deadline, if stopped.is_none() => {
                stopped = Some(Stopped::TimedOut);
                child.kill();
                child.ended().await
            }
        };
        let stderr = tokio::time::timeout(STDERR_WAIT, stderr_tail).await.ok().and_then(Result::ok).unwrap_or_default();
        let run = Run { sections, last_frame, broken, stopped, ended, stderr };
        self.settle(content_type, run)
    }

    fn command(&self, content_type: &str) -> Command {
        let mut command = Command::new(&self.program);
        let limits = &self.limits;
        command
            .arg("extract")
            .args(["--content-type", content_type])
            .args(["--max-pages", &limits.max_pages.to_string()])
            .args(["--max-chars", &limits.max_chars.to_string()])
            .args(["--max-docx-uncompressed-bytes", &limits.max_docx_uncompressed_bytes.to_string()])
            .args(["--max-docx-entries", &limits.max_docx_entries.to_string()])
            .args(["--max-html-depth", &limits.max_html_depth.to_string()]);
        command
    }

    /// Turns how the process ended into the document's result.
    fn settle(&self, content_type: &str, run: Run) -> Extraction {
        let Run { sections, last_frame, broken, stopped, ended, stderr } = run;
        let kind = document_kind(content_type);
        let crash = |detail: String| {
            (
                ExtractorOutcome::Crash,
                Err(ExtractorError::Permanent(format!("the reader crashed on this file ({detail})"))),
            )
        };
        let out_of_memory = ["memory allocation of", "capacity overflow", "out of memory", "Cannot allocate memory"]
            .iter()
            .any(|sign| stderr.contains(sign));
        let (outcome, result) = match (stopped, broken, last_frame) {
            (Some(Stopped::Cancelled), _, _) => (ExtractorOutcome::Cancelled, Err(ExtractorError::Cancelled)),
            (Some(Stopped::TimedOut), _, _) => (
                ExtractorOutcome::TimedOut,
                Err(ExtractorError::Permanent(format!(
                    "processing took longer than the time limit (processing.max_seconds = {})",
                    self.max_seconds
                ))),
            ),
            (None, Some(Broken::TooMuchText), _) => (
                ExtractorOutcome::Unreadable,
                Err(ExtractorError::Permanent(format!(
                    "the extracted text exceeds the character limit (max_chars = {})",
                    self.limits.max_chars
                ))),
            ),
            (None, Some(Broken::Protocol(what)), _) => crash(format!("it sent {what}")),
            (None, None, Some(Frame::Done { markdown, pages })) if ended.exit_code() == Some(0) => {
                (ExtractorOutcome::Ok, Ok(sections.finish(markdown, pages)))
            }
            (None, None, Some(Frame::Unreadable { reason })) => {
                (ExtractorOutcome::Unreadable, Err(ExtractorError::Permanent(reason)))
            }
            _ if ended.signal() == Some(libc::SIGXCPU)
                || (ended.signal() == Some(libc::SIGKILL) && ended.cpu.as_secs() >= self.max_cpu_seconds) =>
            {
                (
                    ExtractorOutcome::CpuLimit,
                    Err(ExtractorError::Permanent(format!(
                        "{kind} made the reader exceed its CPU time limit (processing.max_cpu_seconds = {})",
                        self.max_cpu_seconds
                    ))),
                )
            }
            _ if out_of_memory => (
                ExtractorOutcome::MemoryLimit,
                Err(ExtractorError::Permanent(format!(
                    "{kind} made the reader exceed its memory limit (processing.max_memory_mb = {})",
                    self.max_memory_mb
                ))),
            ),
            _ if stderr.contains("has overflowed its stack") => crash("stack overflow".into()),
            _ if ended.signal() == Some(libc::SIGKILL) => (
                ExtractorOutcome::Killed,
                Err(ExtractorError::MachineTrouble(
                    "the reader was killed from outside docqueue (signal 9, SIGKILL), perhaps by the machine's \
                     out-of-memory killer"
                        .into(),
                )),
            ),
            _ => match (ended.signal(), ended.exit_code()) {
                (Some(signal), _) => crash(format!("signal {signal}, {}", signal_name(signal))),
                (_, Some(0)) => crash("it stopped before finishing its output".into()),
                (_, Some(code)) => crash(format!("exit status {code}")),
                _ => crash(ended.describe()),
            },
        };
        if outcome == ExtractorOutcome::Crash {
            log::warn!("extractor crashed ({}); its last words: {}", ended.describe(), stderr.trim());
        }
        let report = ExtractorReport {
            outcome,
            exit: ended.describe(),
            peak_memory_kb: ended.peak_memory_kb,
            cpu_ms: ended.cpu.as_millis() as i64,
        };
        Extraction { result, report }
    }
}

enum Stopped {
    Cancelled,
    TimedOut,
}

enum Broken {
    TooMuchText,
    Protocol(String),
}

struct Run {
    sections: Sections,
    last_frame: Option<Frame>,
    broken: Option<Broken>,
    stopped: Option<Stopped>,
    ended: Ended,
    stderr: String,
}

/// Starts the process and hands its pipes to the runtime.
fn spawn(
    command: &mut Command,
) -> std::io::Result<(Watched, tokio::process::ChildStdout, tokio::process::ChildStderr)> {
    let mut child = command.spawn()?;
    // Watch first: from here on, dropping the watch kills the process.
    let watched = Watched::start(child.id());
    let stdout = tokio::process::ChildStdout::from_std(child.stdout.take().expect("piped stdout"))?;
    let stderr = tokio::process::ChildStderr::from_std(child.stderr.take().expect("piped stderr"))?;
    Ok((watched, stdout, stderr))
}

/// Reads a pipe to its end, keeping only its last bytes.
async fn read_tail(mut pipe: tokio::process::ChildStderr) -> String {
    let mut tail = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(read) = pipe.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        tail.extend_from_slice(&buffer[..read]);
        if tail.len() > STDERR_TAIL_BYTES {
            tail.drain(..tail.len() - STDERR_TAIL_BYTES);
        }
    }
    String::from_utf8_lossy(&tail).into_owned()
}
