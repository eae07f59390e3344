//! The kernel limits an extractor process runs under, set in the child between fork
//! and exec (so only async-signal-safe calls here: no allocation, no locks).

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::config::ProcessingConfig;

/// What the kernel holds an extractor to.
#[derive(Debug, Clone, Copy)]
pub struct Confinement {
    pub max_memory_bytes: u64,
    pub max_cpu_seconds: u64,
    pub max_open_files: u64,
}

impl From<&ProcessingConfig> for Confinement {
    fn from(config: &ProcessingConfig) -> Self {
        Confinement {
            max_memory_bytes: config.max_memory_mb.saturating_mul(1024 * 1024),
            max_cpu_seconds: config.max_cpu_seconds,
            max_open_files: config.max_open_files,
        }
    }
}

impl Confinement {
    /// Makes `command` start confined: its own process group (one kill reaches all it
    /// starts), no environment, the limits below, killed if this process dies, and no
    /// file descriptor of ours but stdin, stdout and stderr.
    pub fn apply(self, command: &mut Command) {
        let parent = std::process::id() as libc::pid_t;
        command.env_clear().process_group(0);
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe system calls on values copied in beforehand.
        unsafe {
            command.pre_exec(move || self.enter(parent));
        }
    }

    fn enter(self, parent: libc::pid_t) -> io::Result<()> {
        set_limit(libc::RLIMIT_AS, self.max_memory_bytes, self.max_memory_bytes)?;
        // SIGXCPU at the soft limit, SIGKILL a second later should it be ignored.
        set_limit(libc::RLIMIT_CPU, self.max_cpu_seconds, self.max_cpu_seconds + 1)?;
        set_limit(libc::RLIMIT_CORE, 0, 0)?;
        // Writing to any file fails (pipes are not files: stdout still works).
        set_limit(libc::RLIMIT_FSIZE, 0, 0)?;
        set_limit(libc::RLIMIT_NOFILE, self.max_open_files, self.max_open_files)?;
        // SAFETY: plain system calls with integer arguments.
        unsafe {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 || libc::getppid() != parent {
                // The parent is already gone: nobody would read or reap this child.
                libc::_exit(1);
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // Database and Redis sockets, upload files: none may cross exec. Rust opens
            // its own descriptors close-on-exec; C libraries may not.
            let flagged = libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
            if flagged != 0 {
                for fd in 3..1024 {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
        }
        Ok(())
    }
}

/// Lowers a limit; never asks for more than the current hard limit allows.
fn set_limit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> io::Result<()> {
    let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read or write the struct we pass.
    if unsafe { libc::getrlimit(resource, &mut current) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let hard = hard.min(current.rlim_max);
    let limit = libc::rlimit { rlim_cur: soft.min(hard), rlim_max: hard };
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
