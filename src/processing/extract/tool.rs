//! Helper programs (pdftoppm, tesseract) run from inside the extractor process: they
//! inherit its kernel limits and its process group, talk only through pipes (the
//! extractor may not write files: RLIMIT_FSIZE is 0), and die with it.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The end of a helper's stderr kept to explain its failure.
const STDERR_TAIL_BYTES: usize = 4 * 1024;

#[derive(Debug, thiserror::Error)]
pub(super) enum ToolError {
    #[error("could not be started: {0}")]
    NotStarted(std::io::Error),
    #[error("took longer than its time limit")]
    TimedOut,
    /// Killed by a signal: most likely a limit it shares with this process.
    #[error("was killed by signal {0}")]
    Signal(i32),
    #[error("failed ({status}): {stderr}")]
    Failed { status: String, stderr: String },
}

/// Runs `command` with `input` on stdin and returns what it printed on stdout; it is
/// killed once `limit` has passed.
pub(super) fn run_piped(mut command: Command, input: &[u8], limit: Duration) -> Result<Vec<u8>, ToolError> {
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: prctl is async-signal-safe; it runs in the forked child before exec.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(ToolError::NotStarted)?;
    let pid = child.id() as libc::pid_t;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (finished, finished_rx) = mpsc::channel::<()>();
    let (output, stderr_tail, timed_out) = std::thread::scope(|scope| {
        let watchdog = scope.spawn(move || {
            let expired = matches!(finished_rx.recv_timeout(limit), Err(mpsc::RecvTimeoutError::Timeout));
            if expired {
                // SAFETY: a plain system call on our own child, not yet reaped: the
                // wait below runs only after this thread has been joined.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            expired
        });
        // A helper that stops reading early closes its stdin; its exit status tells why.
        scope.spawn(move || {
            let _ = stdin.write_all(input);
        });
        let stderr_reader = scope.spawn(move || {
            let mut tail = Vec::new();
            let mut buffer = [0u8; 4096];
            while let Ok(read) = stderr.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                tail.extend_from_slice(&buffer[..read]);
                if tail.len() > STDERR_TAIL_BYTES {
                    tail.drain(..tail.len() - STDERR_TAIL_BYTES);
                }
            }
            String::from_utf8_lossy(&tail).into_owned()
        });
        let mut output = Vec::new();
        let _ = stdout.read_to_end(&mut output);
        let stderr_tail = stderr_reader.join().unwrap_or_default();
        drop(finished);
        let timed_out = watchdog.join().unwrap_or(false);
        (output, stderr_tail, timed_out)
    });
    let status = child.wait().map_err(ToolError::NotStarted)?;
    if timed_out {
        return Err(ToolError::TimedOut);
    }
    if let Some(signal) = status.signal() {
        // Its last words (std::bad_alloc, …) tell the server which limit it met.
        let _ = std::io::stderr().write_all(stderr_tail.as_bytes());
        return Err(ToolError::Signal(signal));
    }
    if !status.success() {
        return Err(ToolError::Failed { status: status.to_string(), stderr: stderr_tail.trim().to_string() });
    }
    Ok(output)
}

/// A helper was killed by a signal (most likely the CPU or memory limit, which this
/// process shares): end this process the same way, so the server reports it as such.
pub(super) fn die_like(program: &str, signal: i32) -> ! {
    let _ = std::io::stderr().write_all(format!("{program} was killed by signal {signal}\n").as_bytes());
    // SAFETY: plain system calls; resetting the handler makes the signal fatal.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::kill(libc::getpid(), signal);
    }
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_helper_gets_its_input_on_stdin_and_its_output_is_returned() {
        let output = run_piped(Command::new("cat"), b"page text", Duration::from_secs(30)).unwrap();
        assert_eq!(output, b"page text");
    }

    #[test]
    fn a_helper_past_its_time_limit_is_killed() {
        // `sleep 600` would hold the test for ten minutes if the limit did not kill it.
        let mut sleeper = Command::new("sleep");
        sleeper.arg("600");
        assert!(matches!(run_piped(sleeper, b"", Duration::from_millis(200)), Err(ToolError::TimedOut)));
    }

    #[test]
    fn a_failing_helper_reports_its_last_words() {
        let mut failing = Command::new("sh");
        failing.args(["-c", "echo 'Failed loading language xyz' >&2; exit 1"]);
        match run_piped(failing, b"", Duration::from_secs(30)) {
            Err(ToolError::Failed { stderr, .. }) => assert_eq!(stderr, "Failed loading language xyz"),
            other => panic!("{other:?}"),
        }
    }
}
