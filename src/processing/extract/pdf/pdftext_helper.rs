//! `docqueue-pdftext` (built beside docqueue where poppler's C++ library is installed;
//! see `pdftext_helper.cpp`): poppler's text, as pdftotext prints it, from a program
//! this extractor process starts once and keeps for the short PDFs it reads. Starting
//! pdftotext costs a few milliseconds per PDF, more than reading a short one. Like
//! pdftotext it runs under this process's limits, in its process group (killed with
//! it); docqueue talks to it only through pipes and never links poppler (GPL).

use std::io::{BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use super::super::tool::die_like;
use super::super::{beside_this_executable, find_program, ExtractError};
use super::{checks_result, spelled_out, PageTexts, PASSWORD_PROTECTED, POPPLER_CANNOT_READ};

/// Where this build compiled the helper, if it did (`build.rs`).
const BUILT_AT: Option<&str> = option_env!("PDFTEXT_HELPER_BUILT_AT");
/// The page count's place in an answer when poppler cannot open the document.
const UNREADABLE: i32 = -1;
const LOCKED: i32 = -2;
/// A page's length when poppler could not read that page.
const PAGE_UNREADABLE: u32 = u32::MAX;

/// The helper named `name` (`processing.pdftext_helper`): a path, or a program found
/// beside this executable, where this build made it, or on PATH. None when "" or
/// nowhere.
pub fn find(name: &str) -> Option<PathBuf> {
    let name = name.trim();
    if name.is_empty() || name.contains('/') {
        return find_program(name);
    }
    let built = || {
        BUILT_AT.map(PathBuf::from).filter(|path| path.file_name().is_some_and(|file| file == name) && path.is_file())
    };
    beside_this_executable(name).or_else(built).or_else(|| find_program(name))
}

/// The running helper, started at this process's first short PDF.
static RUNNING: Mutex<Option<Helper>> = Mutex::new(None);

struct Helper {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// Reads every page into `pages` with the helper at `program`, running `checks`
/// beside it (their error wins); returns what the checks returned. Ok(None) when the
/// helper cannot be started (the caller then starts pdftotext).
pub(super) fn read<T: Send>(
    program: &Path,
    bytes: &[u8],
    pages: &mut PageTexts,
    checks: impl FnOnce() -> Result<T, ExtractError> + Send,
) -> Result<Option<T>, ExtractError> {
    let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    // One that ended between documents (killed by someone) is replaced.
    if running.as_mut().is_some_and(|helper| !matches!(helper.child.try_wait(), Ok(None))) {
        *running = None;
    }
    let helper = match running.take() {
        Some(helper) => running.insert(helper),
        None => match start(program) {
            Ok(helper) => running.insert(helper),
            Err(err) => {
                log::warn!("{} could not be started: {err}; using pdftotext", program.display());
                return Ok(None);
            }
        },
    };
    let (checked, read) = std::thread::scope(|scope| {
        let checking = scope.spawn(checks);
        let read = ask(helper, bytes, pages);
        let checked = checks_result(checking);
        (checked, read)
    });
    if let Err(broken) = read {
        // The helper died or broke the protocol: this document ends with it, as with
        // pdftotext, and the next PDF starts a new helper.
        log::warn!("docqueue-pdftext broke: {broken}");
        let Some(mut helper) = running.take() else {
            return Err(ExtractError::Permanent("the PDF could not be read".into()));
        };
        drop(helper.stdin);
        let _ = helper.child.kill();
        if let Ok(status) = helper.child.wait() {
            if let Some(signal) = status.signal().filter(|&signal| signal != libc::SIGKILL) {
                die_like("docqueue-pdftext", signal);
            }
        }
        checked?;
        return Err(ExtractError::Permanent(POPPLER_CANNOT_READ.into()));
    }
    let checked = checked?;
    read.unwrap_or(Ok(()))?;
    Ok(Some(checked))
}

fn start(program: &Path) -> std::io::Result<Helper> {
    // No PR_SET_PDEATHSIG, unlike pdftotext: it follows the thread that started the
    // child, and the helper outlives that thread where several threads share it. It
    // ends when its stdin closes, that is when this process ends, and the kill of an
    // extractor reaches its whole process group.
    let mut child =
        Command::new(program).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()?;
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    Ok(Helper { child, stdin, stdout })
}

/// Sends the document and reads the answer. The outer error: the helper broke; the
/// inner one: the document is unreadable or over a limit.
fn ask(helper: &mut Helper, bytes: &[u8], pages: &mut PageTexts) -> std::io::Result<Result<(), ExtractError>> {
    helper.stdin.write_all(&(bytes.len() as u64).to_le_bytes())?;
    helper.stdin.write_all(bytes)?;
    helper.stdin.flush()?;
    let mut word = [0u8; 4];
    helper.stdout.read_exact(&mut word)?;
    let count = i32::from_le_bytes(word);
    match count {
        UNREADABLE => return Ok(Err(ExtractError::Permanent(POPPLER_CANNOT_READ.into()))),
        LOCKED => return Ok(Err(ExtractError::Permanent(PASSWORD_PROTECTED.into()))),
        _ => {}
    }
    let mut added = Ok(());
    let mut text = Vec::new();
    for page in 1..=count.max(0) as u32 {
        helper.stdout.read_exact(&mut word)?;
        let length = u32::from_le_bytes(word);
        if length == PAGE_UNREADABLE {
            pages.skip(page, "poppler could not read the page".into());
            continue;
        }
        text.clear();
        (&mut helper.stdout).take(u64::from(length)).read_to_end(&mut text)?;
        if text.len() != length as usize {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        // Pages past the page limit or the character limit are read off the pipe and
        // dropped, so the helper is ready for the next document.
        if added.is_ok() && page <= pages.page_count {
            added = pages.add(page, spelled_out(String::from_utf8_lossy(&text).trim()));
        }
    }
    Ok(added)
}
