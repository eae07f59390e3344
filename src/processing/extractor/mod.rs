//! Every uploaded file is read in a separate process, `docqueue-extract extract` (see
//! `command_line`), started under kernel limits (`confine`), fed the file on stdin,
//! answering in frames on stdout (`protocol`). A hostile file can make that process
//! crash, hang or bloat; the server only sees it end, kills it on cancel or at the
//! deadline, and fails that one document with the reason. After a clean read the
//! process may read more of the same user's documents (`kept`), as Apache Tika's
//! forking parser reuses its child. Tika's forking parser is the model.

mod child;
pub mod command_line;
mod confine;
mod kept;
mod outcome;
mod process;
pub mod protocol;
mod spares;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::ChildStdin;
use tokio::time::Instant;

pub use child::run as run_child;
pub use confine::Confinement;
use kept::{Kept, Reader};
pub use outcome::{document_kind, ExtractorError, ExtractorOutcome, ExtractorReport};
use process::{signal_name, Ended, Started};
use protocol::{read_frame, Frame, Request, Sections};
use spares::Spares;

use super::extract::{beside_this_executable, ExtractOptions, ExtractedText, OcrEngine, OcrPages};
use crate::config::ProcessingConfig;

/// How long stderr may stay open after the process ended (a grandchild holding it).
const STDERR_WAIT: Duration = Duration::from_millis(500);
/// How long the feeder may take to finish once the process has answered (it has read
/// the whole document by then, so this is only a bound for a broken one).
const FEEDER_WAIT: Duration = Duration::from_millis(500);
/// Files up to this size are read whole and sent in one write with the request.
const INLINE_FILE_BYTES: u64 = 256 * 1024;

/// Starts extractor processes with one configuration, keeping spares started ahead.
#[derive(Clone)]
pub struct Extractor {
    program: PathBuf,
    spares: Spares,
    spare_count: usize,
    kept: Kept,
    max_documents_per_extractor: u32,
    confinement: Confinement,
    limits: ExtractOptions,
    max_memory_mb: u64,
    max_cpu_seconds: u64,
    max_seconds: u64,
}

/// How far the reading of a document has come.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadProgress {
    /// 0–1.
    pub fraction: f32,
    /// Pages recognised by OCR of those it will recognise, once OCR has begun.
    pub ocr_pages: Option<OcrPages>,
}

/// `processing.extractor_program`: a path; or a bare name, looked up beside this
/// executable, then on PATH; or, when empty or not found, this executable (`docqueue
/// extract`), which starts several times slower: it loads the database clients' libraries.
fn extractor_program(configured: &str) -> std::io::Result<PathBuf> {
    let configured = configured.trim();
    if configured.contains('/') {
        return Ok(PathBuf::from(configured));
    }
    let this = std::env::current_exe()?;
    if configured.is_empty() {
        return Ok(this);
    }
    match beside_this_executable(configured).or_else(|| super::extract::find_program(configured)) {
        Some(found) => Ok(found),
        None => {
            log::info!(
                "{configured} was found neither beside {} nor on PATH: documents are read by its `extract`",
                this.display()
            );
            Ok(this)
        }
    }
}

/// Writes the request and the document to the process, then hands its stdin back.
type Feeder = tokio::task::JoinHandle<std::io::Result<ChildStdin>>;

/// One run's result, and what the kernel reported about the process when there was one.
pub struct Extraction {
    pub result: Result<ExtractedText, ExtractorError>,
    pub report: ExtractorReport,
}

impl Extraction {
    /// A read that ended before any extractor process read the file; `why` is its report.
    pub fn not_started(error: ExtractorError, why: String) -> Extraction {
        Extraction { result: Err(error), report: ExtractorReport::not_started(why) }
    }
}

impl Extractor {
    /// `processing.extractor_program` (see `extractor_program`). It keeps
    /// `processing.extractor_spares` processes started ahead of need.
    pub fn from_config(config: &ProcessingConfig) -> std::io::Result<Extractor> {
        let program = extractor_program(&config.extractor_program)?;
        let limits = ExtractOptions::from(config);
        Ok(Extractor {
            program,
            spares: Spares::default(),
            spare_count: config.extractor_spares,
            kept: Kept::default(),
            max_documents_per_extractor: config.max_documents_per_extractor,
            confinement: Confinement::from(config),
            limits,
            max_memory_mb: config.max_memory_mb,
            max_cpu_seconds: config.max_cpu_seconds,
            max_seconds: config.max_seconds,
        })
    }

    /// Reads `file` (of the sniffed `content_type`, uploaded by `owner`) in an
    /// extractor process: one kept for `owner`, a spare, or a new one.
    /// `on_progress` follows the reading; when `cancelled` resolves or
    /// `deadline` passes, the process is killed and the run ends at once.
    pub async fn run(
        &self,
        owner: &str,
        file: &Path,
        content_type: &str,
        on_progress: &mut (dyn FnMut(ReadProgress) + Send),
        cancelled: impl Future<Output = ()>,
        deadline: Instant,
    ) -> Extraction {
        // Opening a stored file, and reading a small one, cost less than the hops to
        // the blocking pool that tokio's file I/O takes.
        let opened = std::fs::File::open(file).and_then(|input| {
            let bytes = input.metadata()?.len();
            Ok((input, bytes))
        });
        let (input, bytes) = match opened {
            Ok(opened) => opened,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let reason = "the uploaded file is missing from storage";
                return Extraction::not_started(ExtractorError::Permanent(reason.into()), reason.into());
            }
            Err(err) => {
                let reason = format!("the uploaded file could not be read: {}", err.kind());
                return Extraction::not_started(ExtractorError::MachineTrouble(reason.clone()), reason);
            }
        };
        let mut request = serde_json::to_vec(&Request { content_type: content_type.to_string(), bytes })
            .expect("a request serialises");
        request.push(b'\n');
        // A small file goes in the request's own write; a large one is streamed after it.
        let rest = if bytes <= INLINE_FILE_BYTES {
            if let Err(err) = std::io::Read::read_to_end(&mut std::io::Read::take(input, bytes), &mut request) {
                let reason = format!("the uploaded file could not be read: {}", err.kind());
                return Extraction::not_started(ExtractorError::MachineTrouble(reason.clone()), reason);
            }
            None
        } else {
            Some(tokio::fs::File::from_std(input))
        };
        let reader = match self.kept.take(owner) {
            Some(kept) => Ok(kept),
            None => self.spares.take().map_or_else(|| self.start(), Ok).map(Reader::fresh),
        };
        let Reader { process, documents_read, cpu_before } = match reader {
            Ok(reader) => reader,
            Err(err) => {
                let reason = format!("the extractor process could not be started: {err}");
                return Extraction::not_started(ExtractorError::MachineTrouble(reason.clone()), reason);
            }
        };
        let Started { watched: mut child, mut stdin, stdout: mut reader, stderr_tail } = process;
        let pid = child.pid();
        // A reader that dies early closes its stdin: the feeder's error is its own to
        // report. It hands stdin back, for the process's next document.
        let mut feeder = Some(tokio::spawn(async move {
            stdin.write_all(&request).await?;
            if let Some(input) = rest {
                tokio::io::copy(&mut input.take(bytes), &mut stdin).await?;
            }
            stdin.flush().await?;
            Ok::<_, std::io::Error>(stdin)
        }));

        let mut line = Vec::new();
        let mut sections = Sections::new(self.limits.max_chars);
        let mut last_frame = None;
        let mut broken = None;
        let mut stopped = None;
        let mut kept_stdin = None;
        tokio::pin!(cancelled);
        let deadline = tokio::time::sleep_until(deadline);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                frame = read_frame(&mut reader, &mut line) => match frame {
                    Ok(None) => break,
                    Ok(Some(Frame::Progress { fraction, ocr_pages })) if last_frame.is_none() => {
                        on_progress(ReadProgress { fraction, ocr_pages });
                    }
                    Ok(Some(Frame::Text { page, text, continues })) if last_frame.is_none() => {
                        if !sections.add(page, text, continues) {
                            broken = Some(Broken::TooMuchText);
                            break;
                        }
                    }
                    Ok(Some(frame @ (Frame::Done { .. } | Frame::Unreadable { .. }))) if last_frame.is_none() => {
                        let clean = matches!(frame, Frame::Done { .. });
                        last_frame = Some(frame);
                        if clean && documents_read + 1 < self.max_documents_per_extractor {
                            kept_stdin = finished_feeder(feeder.take()).await;
                            if kept_stdin.is_some() {
                                break;
                            }
                        }
                        // Stdin closes: the process ends, and is expected to say no more.
                        close_stdin(feeder.take());
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
        if let Some(stdin) = kept_stdin {
            if let (Some(usage), Some(Frame::Done { markdown, pages, warning })) = (child.usage(), last_frame.as_ref())
            {
                let (markdown, pages, warning) = (*markdown, *pages, warning.clone());
                let report = ExtractorReport {
                    outcome: ExtractorOutcome::Ok,
                    exit: "kept running for its owner's next document".into(),
                    peak_memory_kb: usage.peak_memory_kb,
                    cpu_ms: usage.cpu.saturating_sub(cpu_before).as_millis() as i64,
                    pid: Some(pid),
                };
                let process = Started { watched: child, stdin, stdout: reader, stderr_tail };
                let reader = Reader { process, documents_read: documents_read + 1, cpu_before: usage.cpu };
                self.kept.put(owner, reader, usage, self.max_documents_per_extractor);
                self.warm_up();
                return Extraction { result: Ok(sections.finish(markdown, pages, warning)), report };
            }
            // It exited right after answering: settled below like any process that ended.
            drop(stdin);
        }
        close_stdin(feeder.take());
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
        let run = Run { sections, last_frame, broken, stopped, ended, stderr, cpu_before, pid };
        // The next document's process starts now; fork and exec hold this thread (the
        // workers' event loop) for 2-5 ms. Starting spares on a thread of their own was
        // slower (issue 17): the server writes on while the child shares its pages, and
        // each write copies one.
        self.warm_up();
        self.settle(content_type, run)
    }

    /// Says at start-up which readers documents will meet, and what to install for the
    /// missing ones; only processes that read files call it (an API-only process, in
    /// an image without the readers, would only mislead).
    pub fn log_readers(&self, config: &ProcessingConfig) {
        match &self.limits.pdftotext {
            Some(pdftotext) if self.limits.pdftext_helper.is_some() => {
                let helper = self.limits.pdftext_helper.as_deref().unwrap_or(pdftotext);
                log::info!(
                    "PDFs are read by poppler: short ones by {} kept in each extractor, long ones by {}",
                    helper.display(),
                    pdftotext.display()
                );
            }
            Some(pdftotext) => log::info!("PDFs are read by poppler: {}", pdftotext.display()),
            None => log::warn!(
                "PDFs are read by the built-in reader: processing.pdftotext ({:?}) was not found; install \
                 poppler-utils for text as poppler reads it",
                config.pdftotext
            ),
        }
        log_ocr_engine(config, &self.limits);
    }

    /// Starts spares until `processing.extractor_spares` wait. Call it from a thread that
    /// lives as long as the process (an event loop, not the blocking pool): extractors
    /// are killed when the thread that started them ends.
    pub fn warm_up(&self) {
        self.spares.refill(self.spare_count, || self.start());
    }

    fn start(&self) -> std::io::Result<Started> {
        let mut command = Command::new(&self.program);
        command.args(command_line::arguments(&self.limits));
        self.confinement.apply(&mut command);
        process::start(&mut command)
    }

    /// Turns how the process ended into the document's result.
    fn settle(&self, content_type: &str, run: Run) -> Extraction {
        let Run { sections, last_frame, broken, stopped, ended, stderr, cpu_before, pid } = run;
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
            (None, None, Some(Frame::Done { markdown, pages, warning })) if ended.exit_code() == Some(0) => {
                (ExtractorOutcome::Ok, Ok(sections.finish(markdown, pages, warning)))
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
            cpu_ms: ended.cpu.saturating_sub(cpu_before).as_millis() as i64,
            pid: Some(pid),
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
    /// The process's CPU time before this document (it may have read others).
    cpu_before: Duration,
    pid: u32,
}

/// The feeder's stdin once it has sent the whole document; `None`, with stdin closed,
/// when it failed or does not finish in time.
async fn finished_feeder(feeder: Option<Feeder>) -> Option<ChildStdin> {
    let feeder = feeder?;
    let abort = feeder.abort_handle();
    match tokio::time::timeout(FEEDER_WAIT, feeder).await {
        Ok(Ok(Ok(stdin))) => Some(stdin),
        _ => {
            abort.abort();
            None
        }
    }
}

/// Closes the process's stdin, whether the feeder is still writing or has finished
/// (dropping a finished task's handle drops the stdin it returned).
fn close_stdin(feeder: Option<Feeder>) {
    if let Some(feeder) = feeder {
        feeder.abort();
    }
}

/// Says at start-up whether scans and images will be read, by which engine, in which
/// languages, and what to install when they will not.
fn log_ocr_engine(config: &ProcessingConfig, limits: &ExtractOptions) {
    let ocr = &limits.ocr;
    let tesseract = match &ocr.engine {
        OcrEngine::Tesseract(tesseract) => tesseract,
        OcrEngine::Disabled => {
            log::info!("OCR is off (processing.ocr.enabled = false): scanned PDFs and images will fail");
            return;
        }
        OcrEngine::NotInstalled => {
            let wanted = if config.ocr.enabled == Some(true) { " although processing.ocr.enabled = true" } else { "" };
            log::warn!(
                "OCR is off{wanted}: processing.ocr.tesseract ({:?}) was not found; scanned PDFs and images will \
                 fail until the tesseract-ocr package (and tesseract-ocr-LANG for each language) is installed",
                config.ocr.tesseract
            );
            return;
        }
    };
    // Asking the engine itself is the only way to learn its version and languages; it
    // answers in milliseconds, once per process.
    let mut command = Command::new(tesseract);
    command.arg("--list-langs");
    if let Some(dir) = &ocr.tessdata_dir {
        command.arg("--tessdata-dir").arg(dir);
    }
    let installed: Vec<String> = command
        .output()
        .map(|output| {
            // Tesseract 4 prints the list on stderr, 5 on stdout; the first line is a heading.
            let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
            text.lines().filter(|line| !line.contains(' ') && !line.is_empty()).map(str::to_string).collect()
        })
        .unwrap_or_default();
    let version = Command::new(tesseract)
        .arg("--version")
        .output()
        .ok()
        .and_then(|output| {
            let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
            text.lines().next().map(|line| line.trim().to_string())
        })
        .unwrap_or_else(|| "tesseract".into());
    let pdf_pages = match &ocr.pdftoppm {
        Some(pdftoppm) => format!("PDF pages without text rendered by {} at {} DPI", pdftoppm.display(), ocr.dpi),
        None => "no pdftoppm (install poppler-utils): scanned PDFs will fail, images are read".into(),
    };
    log::info!("OCR: {version} ({}), languages {}; {pdf_pages}", tesseract.display(), ocr.languages);
    for language in ocr.languages.split('+').filter(|code| !installed.iter().any(|have| have == code)) {
        log::warn!(
            "OCR language {language:?} (processing.ocr.languages) is not installed: install the \
             tesseract-ocr-{} package; documents will fail until it is",
            language.to_ascii_lowercase().replace('_', "-")
        );
    }
}
