//! A started extractor process: its pipes, and a thread that waits for its end.
//! Killing reaches its whole process group, and never a stranger: once the process has
//! exited it is no longer killed, and it is reaped only after that is recorded.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, BufReader};
use tokio::process::{ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The end of the extractor's stderr kept to explain a crash.
const STDERR_TAIL_BYTES: usize = 8 * 1024;

/// A started extractor, waiting for its request on stdin.
pub struct Started {
    pub watched: Watched,
    pub stdin: ChildStdin,
    pub stdout: BufReader<ChildStdout>,
    /// The last bytes it wrote to stderr, once stderr closes.
    pub stderr_tail: JoinHandle<String>,
}

/// Starts `command` with piped stdio and hands its pipes to the runtime.
pub fn start(command: &mut Command) -> std::io::Result<Started> {
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn()?;
    // Watch first: from here on, dropping the watch kills the process.
    let watched = Watched::start(child.id());
    let stdin = ChildStdin::from_std(child.stdin.take().expect("piped stdin"))?;
    let stdout = ChildStdout::from_std(child.stdout.take().expect("piped stdout"))?;
    let stderr = ChildStderr::from_std(child.stderr.take().expect("piped stderr"))?;
    Ok(Started { watched, stdin, stdout: BufReader::new(stdout), stderr_tail: tokio::spawn(read_tail(stderr)) })
}

/// Reads a pipe to its end, keeping only its last bytes.
async fn read_tail(mut pipe: ChildStderr) -> String {
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

/// How a process ended, as `wait4` tells it.
#[derive(Debug, Clone, Copy)]
pub struct Ended {
    /// The raw wait status (`WIFEXITED`, `WTERMSIG`, …).
    pub status: i32,
    pub peak_memory_kb: i64,
    pub cpu: Duration,
}

impl Ended {
    pub fn signal(&self) -> Option<i32> {
        libc::WIFSIGNALED(self.status).then(|| libc::WTERMSIG(self.status))
    }

    pub fn exit_code(&self) -> Option<i32> {
        libc::WIFEXITED(self.status).then(|| libc::WEXITSTATUS(self.status))
    }

    /// "exit 0", "signal 9 (SIGKILL)": for the job's story.
    pub fn describe(&self) -> String {
        match (self.exit_code(), self.signal()) {
            (Some(code), _) => format!("exit {code}"),
            (_, Some(signal)) => format!("signal {signal} ({})", signal_name(signal)),
            _ => format!("wait status {}", self.status),
        }
    }
}

pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => "another signal",
    }
}

/// What a live process has used so far.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub cpu: Duration,
    pub peak_memory_kb: i64,
}

pub struct Watched {
    pid: libc::pid_t,
    exited: Arc<Mutex<bool>>,
    ended: Option<oneshot::Receiver<Ended>>,
}

impl Watched {
    /// Starts watching the child `pid` (which must lead its own process group).
    pub fn start(pid: u32) -> Watched {
        let pid = pid as libc::pid_t;
        let exited = Arc::new(Mutex::new(false));
        let (tx, rx) = oneshot::channel();
        let flag = exited.clone();
        // The thread lives exactly as long as the process: every path that gives up on
        // the process kills it first.
        tokio::task::spawn_blocking(move || {
            wait_without_reaping(pid);
            *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
            let _ = tx.send(reap(pid));
        });
        Watched { pid, exited, ended: Some(rx) }
    }

    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// What the live process has used so far: its CPU with that of the children it has
    /// waited for and of those still running (the PDF helper an extractor keeps), and
    /// the highest peak memory of any of them, since the kernel's limits count per
    /// process. Read from /proc; `None` once it has exited.
    pub fn usage(&self) -> Option<Usage> {
        if self.has_exited() {
            return None;
        }
        let own = process_usage(self.pid)?;
        let children = std::fs::read_dir(format!("/proc/{}/task", self.pid))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
            .flat_map(|pids| pids.split_whitespace().filter_map(|pid| pid.parse().ok()).collect::<Vec<_>>())
            // A child that exits meanwhile is counted by the parent's wait instead.
            .filter_map(process_usage);
        Some(children.fold(own, |all, child| Usage {
            cpu: all.cpu + child.cpu,
            peak_memory_kb: all.peak_memory_kb.max(child.peak_memory_kb),
        }))
    }

    pub fn has_exited(&self) -> bool {
        *self.exited.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// SIGKILL to the process group, unless the process has already exited.
    pub fn kill(&self) {
        let exited = self.exited.lock().unwrap_or_else(|e| e.into_inner());
        if !*exited {
            // SAFETY: a plain system call; the group still exists, since its leader
            // has not been reaped (we hold the flag that reaping waits for).
            unsafe { libc::killpg(self.pid, libc::SIGKILL) };
        }
    }

    /// Waits for the end. Cancel-safe: it can be raced and awaited again.
    pub async fn ended(&mut self) -> Ended {
        let receiver = self.ended.as_mut().expect("awaited after it ended");
        let ended = receiver.await.unwrap_or(Ended { status: 0, peak_memory_kb: 0, cpu: Duration::ZERO });
        self.ended = None;
        ended
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        // A job dropped mid-way (timeout, shutdown) must not leave its reader running.
        if self.ended.is_some() {
            self.kill();
        }
    }
}

/// One process's CPU (its own and its waited-for children's) and peak memory, from
/// /proc; `None` if it is gone.
fn process_usage(pid: libc::pid_t) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may itself hold spaces and parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime, stime, cutime, cstime: fields 14 to 17 of proc(5), counted from 3 here.
    let ticks: u64 = fields.get(11..15)?.iter().filter_map(|f| f.parse::<u64>().ok()).sum();
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let peak_memory_kb = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())?;
    Some(Usage { cpu: Duration::from_millis(ticks * 1000 / per_second), peak_memory_kb })
}

fn wait_without_reaping(pid: libc::pid_t) {
    loop {
        // SAFETY: waitid writes only into the siginfo we pass.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let result = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if result == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

fn reap(pid: libc::pid_t) -> Ended {
    let mut status = 0;
    // SAFETY: wait4 writes only into the status and rusage we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let result = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if result >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    let time = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    Ended { status, peak_memory_kb: usage.ru_maxrss, cpu: time(usage.ru_utime) + time(usage.ru_stime) }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;

    use super::*;

    #[tokio::test]
    async fn usage_counts_the_cpu_of_a_child_the_process_keeps_running() {
        // The parent only sleeps; its child spins, as a kept PDF helper may.
        let mut command = Command::new("sh");
        command.args(["-c", "(while :; do :; done) & sleep 60"]).process_group(0);
        let started = start(&mut command).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let usage = started.watched.usage().expect("the process is alive");
            if usage.cpu >= Duration::from_millis(300) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the child's CPU is not counted: {usage:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        started.watched.kill();
    }
}
