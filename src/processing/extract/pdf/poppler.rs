//! Poppler's `pdftotext`, run as a separate program from inside the extractor process
//! (so under the same kernel limits, in the same process group). Large documents are
//! read as two page ranges in parallel; pages arrive separated by form feeds.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use super::super::tool::die_like;
use super::super::ExtractError;
use super::{checks_result, spelled_out, PageTexts, POPPLER_CANNOT_READ};

/// From this many pages on, two pdftotext processes share the work.
pub(super) const PARALLEL_FROM_PAGES: u32 = 16;

/// Reads every page into `pages`, running `checks` beside the readers (their error wins
/// and stops the readers); returns what the checks returned. Ok(None) when pdftotext
/// could not be started at all (the caller then uses the built-in reader).
pub(super) fn read<T: Send>(
    program: &Path,
    bytes: &[u8],
    pages: &mut PageTexts,
    checks: impl FnOnce() -> Result<T, ExtractError> + Send,
) -> Result<Option<T>, ExtractError> {
    let count = pages.page_count;
    let ranges = if count >= PARALLEL_FROM_PAGES {
        let middle = count / 2;
        vec![(1, middle), (middle + 1, count)]
    } else {
        vec![(1, count)]
    };
    let mut children = Vec::new();
    for &(first, last) in &ranges {
        match start(program, first, last) {
            Ok(child) => children.push((first, child)),
            Err(err) => {
                log::warn!("pdftotext ({}) could not be started: {err}; using the built-in reader", program.display());
                for (_, mut child) in children {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                return Ok(None);
            }
        }
    }

    let pids: Vec<libc::pid_t> = children.iter().map(|(_, child)| child.id() as libc::pid_t).collect();
    let (page_tx, page_rx) = mpsc::channel::<(u32, String)>();
    let (checked, outcomes) = std::thread::scope(|scope| {
        let checking = scope.spawn(move || {
            let checked = checks();
            if checked.is_err() {
                for pid in pids {
                    // SAFETY: a plain system call on our own child, not yet reaped (its
                    // reader thread waits for it).
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            checked
        });
        let readers: Vec<_> = children
            .into_iter()
            .map(|(first, child)| {
                let page_tx = page_tx.clone();
                scope.spawn(move || run(child, bytes, first, page_tx))
            })
            .collect();
        drop(page_tx);
        let mut added = Ok(());
        for (page, text) in page_rx {
            if added.is_ok() {
                added = pages.add(page, text);
            }
        }
        let outcomes: Vec<Ended> = readers.into_iter().map(|reader| reader.join().unwrap_or(Ended::Failed)).collect();
        let checked = checks_result(checking);
        (checked, added.map(|()| outcomes))
    });
    let checked = checked?;
    for outcome in outcomes? {
        match outcome {
            Ended::Read => {}
            Ended::Failed => {
                return Err(ExtractError::Permanent(POPPLER_CANNOT_READ.into()));
            }
            Ended::NotAllowed => {
                return Err(ExtractError::Permanent("the PDF's permissions forbid copying its text".into()));
            }
            Ended::Signal(signal) => die_like("pdftotext", signal),
        }
    }
    Ok(Some(checked))
}

fn start(program: &Path, first: u32, last: u32) -> std::io::Result<Child> {
    let mut command = Command::new(program);
    // -q: a broken stream can make poppler print gigabytes of syntax errors.
    command
        .args(["-q", "-enc", "UTF-8", "-f", &first.to_string(), "-l", &last.to_string(), "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // SAFETY: prctl is async-signal-safe; it runs in the forked child before exec.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command.spawn()
}

enum Ended {
    Read,
    Failed,
    NotAllowed,
    Signal(i32),
}

/// Feeds the document to one pdftotext and sends each page it prints, numbered from
/// `first`.
fn run(mut child: Child, bytes: &[u8], first: u32, pages: mpsc::Sender<(u32, String)>) -> Ended {
    let mut stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    std::thread::scope(|scope| {
        // pdftotext reads all of stdin before printing; a failed write means it died,
        // which its exit status tells.
        scope.spawn(move || {
            let _ = stdin.write_all(bytes);
        });
        let mut reader = BufReader::new(stdout);
        let mut page = first;
        let mut raw = Vec::new();
        while reader.read_until(b'\x0c', &mut raw).is_ok_and(|read| read > 0) {
            if raw.last() == Some(&b'\x0c') {
                raw.pop();
            }
            let text = spelled_out(String::from_utf8_lossy(&raw).trim());
            if pages.send((page, text)).is_err() {
                break;
            }
            page += 1;
            raw.clear();
        }
    });
    match child.wait() {
        Ok(status) if status.success() => Ended::Read,
        Ok(status) if status.code() == Some(3) => Ended::NotAllowed,
        Ok(status) => status.signal().map_or(Ended::Failed, Ended::Signal),
        Err(_) => Ended::Failed,
    }
}
