//! scripts/doctor.sh run as an operator would, and what it printed.

use std::path::Path;

/// The checks scripts/doctor.sh prints, one line each, in this order.
pub const CHECKS: [&str; 23] = [
    "healthz",
    "readyz",
    "metrics",
    "admin",
    "redis",
    "redis-memory",
    "lost-jobs",
    "paused",
    "workers",
    "prefix",
    "backlog",
    "processing",
    "job",
    "events",
    "failures",
    "extractor",
    "uploads",
    "http-errors",
    "database",
    "websocket",
    "cors",
    "embedding",
    "log",
];

/// What one run of the doctor printed.
pub struct Doctor {
    pub success: bool,
    pub output: String,
}

impl Doctor {
    /// The check lines: (status, check, the whole line).
    pub fn checks(&self) -> Vec<(&str, &str, &str)> {
        self.output
            .lines()
            .filter(|line| !line.starts_with(' '))
            .map(|line| {
                let mut words = line.split_whitespace();
                (words.next().unwrap_or(""), words.next().unwrap_or(""), line)
            })
            .collect()
    }

    pub fn line(&self, check: &str) -> &str {
        let found = self.checks().into_iter().find(|(_, name, _)| *name == check);
        found.map(|(_, _, line)| line).unwrap_or_else(|| panic!("no `{check}` line in:\n{}", self.output))
    }

    pub fn status(&self, check: &str) -> &str {
        self.line(check).split_whitespace().next().unwrap()
    }
}

/// Runs scripts/doctor.sh from the repository with `args` and the environment `env`
/// (added to this process's, later entries winning). It must write nothing to stderr
/// and name every check once, in order.
pub async fn run(args: &[&str], env: Vec<(String, String)>) -> Doctor {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut command = std::process::Command::new(Path::new(root).join("scripts/doctor.sh"));
    command.current_dir(root).args(args).envs(env);
    let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().unwrap();
    let doctor =
        Doctor { success: output.status.success(), output: String::from_utf8_lossy(&output.stdout).into_owned() };
    assert!(output.stderr.is_empty(), "the doctor wrote to stderr: {}", String::from_utf8_lossy(&output.stderr));
    let names: Vec<&str> = doctor.checks().iter().map(|(_, name, _)| *name).collect();
    assert_eq!(names, CHECKS, "the doctor names each check once, in order:\n{}", doctor.output);
    doctor
}
