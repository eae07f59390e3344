//! Operating docqueue: scripts/doctor.sh run against servers the tests start (healthy,
//! paused, without workers, with an evicting and then a stopped Redis), the commands of
//! docs/troubleshooting.md held equal to the doctor's, and the alert rules' tests
//! complete (scripts/test.sh runs `promtool test rules` on them).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::doctor::{Doctor, CHECKS};
use common::{admin_token, token, OwnRedis, ServerProcess, TestEnv};
use redis::Commands;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs scripts/doctor.sh as an operator would: the server's own environment (Redis URL,
/// key prefix, database, JWT secret), its log file, docqueue on PATH, plus `env`.
async fn doctor(test: &TestEnv, server: &ServerProcess, args: &[&str], env: &[(&str, &str)]) -> Doctor {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_docqueue")).parent().unwrap().display().to_string();
    let path = format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default());
    let mut vars = test.env_vars();
    vars.push(("DOCTOR_LOG".into(), server.log.display().to_string()));
    vars.push(("PATH".into(), path));
    vars.extend(env.iter().map(|(name, value)| (name.to_string(), value.to_string())));
    common::doctor::run(args, vars).await
}

/// The one command of the guide's `sh` blocks that contains `fragment`.
fn guide_command(fragment: &str) -> String {
    let guide = repo_file("docs/troubleshooting.md");
    let mut found: Vec<&str> = sh_lines(&guide).into_iter().filter(|line| line.contains(fragment)).collect();
    found.dedup();
    assert_eq!(found.len(), 1, "commands of the guide with {fragment}: {found:?}");
    found[0].to_string()
}

/// Runs a command of the guide with bash, with its variables set; returns its output.
async fn run_guide_command(command: &str, vars: &[(&str, &str)]) -> String {
    let mut bash = std::process::Command::new("bash");
    bash.args(["-c", command]).envs(vars.iter().copied());
    let output = tokio::task::spawn_blocking(move || bash.output()).await.unwrap().unwrap();
    assert!(output.status.success(), "{command}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Waits until the server's worker process has its liveness key and a progress hub
/// listens for events: the doctor's `workers` and `events` checks look for both.
async fn wait_for_workers_and_hub(test: &TestEnv) {
    let mut redis = test.redis();
    let (alive, events) = (format!("{}alive:*", test.redis_prefix), format!("{}events", test.redis_prefix));
    common::eventually(Duration::from_secs(30), "a live worker process and a listening hub", || {
        let processes: Vec<String> = redis.keys(&alive).unwrap();
        let (_, hubs): (String, u64) = redis::cmd("PUBSUB").arg("NUMSUB").arg(&events).query(&mut redis).unwrap();
        async move { (!processes.is_empty() && hubs > 0).then_some(()) }
    })
    .await;
}

#[actix_web::test]
async fn doctor_is_green_on_a_healthy_server_and_names_a_paused_queue() {
    let test = TestEnv::new();
    let server = ServerProcess::start(&test, &[]).await;
    wait_for_workers_and_hub(&test).await;
    // No token given: the doctor makes one with `docqueue token`, as the guide does.
    let healthy = doctor(&test, &server, &[&server.http.base], &[]).await;
    for (status, check, line) in healthy.checks() {
        assert_eq!(status, "OK", "{check}: {line}\n{}", healthy.output);
    }
    assert!(healthy.success);
    if common::uses_postgres() {
        assert!(healthy.line("database").contains("PostgreSQL connections"), "{}", healthy.output);
    }

    let (base, admin) = (server.http.base.as_str(), admin_token("ops"));
    let pause = server.http.client.post(server.http.url("/api/admin/queue/pause")).bearer_auth(&admin).send();
    assert_eq!(pause.await.unwrap().status(), 200);
    let alice = token("alice");
    let doc = server.http.upload_one(&alice, "waiting.md", b"# Waiting\n\nFor a worker.\n".to_vec()).await;
    let job_id = doc["job_id"].as_str().unwrap();
    let paused = doctor(&test, &server, &[base, &admin], &[("DOCTOR_JOB", job_id), ("DOCTOR_USER", "alice")]).await;
    assert!(!paused.success);
    assert_eq!(paused.status("paused"), "WARN");
    assert!(paused.line("paused").contains("claiming is paused: 1 waiting"), "{}", paused.output);
    assert!(paused.line("job").contains(&format!("{job_id}: waiting, position 1")), "{}", paused.output);
    assert!(paused.line("job").contains("attempt 0, 0 stalls"), "{}", paused.output);
    let events = paused.line("events");
    assert!(events.contains("alice's last seq") && !events.contains("last seq 0"), "{}", paused.output);

    // The fix the doctor prints is the guide's; it works as printed.
    let resume = guide_command("/api/admin/queue/resume");
    assert!(paused.output.contains(&resume), "{}", paused.output);
    let answer = run_guide_command(&resume, &[("URL", base), ("ADMIN", &admin)]).await;
    assert_eq!(answer, r#"{"paused":false}"#);
    server.http.wait_for_status(&alice, doc["id"].as_str().unwrap(), "completed").await;
    let resumed = doctor(&test, &server, &[base, &admin], &[("DOCTOR_JOB", job_id)]).await;
    assert!(resumed.success, "{}", resumed.output);
    assert!(resumed.line("failures").contains("1 completed, 0 failed"), "{}", resumed.output);
    // A finished job's hash keeps its last run's stage, progress and lease; the doctor
    // speaks of them only while the job runs.
    let finished = resumed.line("job");
    assert!(finished.contains(&format!("{job_id}: completed on ")), "{}", resumed.output);
    assert!(finished.contains("attempt 1, 0 stalls; the document"), "{}", resumed.output);
}

#[actix_web::test]
async fn doctor_says_jobs_will_wait_when_no_worker_process_runs() {
    let test = TestEnv::new();
    let server = ServerProcess::start_as(&test, "api", &[]).await;
    let (base, admin) = (server.http.base.as_str(), admin_token("ops"));
    let alice = token("alice");
    let doc = server.http.upload_one(&alice, "waiting.md", b"# Waiting\n\nFor ever.\n".to_vec()).await;
    // An embedding endpoint that does not answer: nothing listens on port 1.
    let embedding =
        [("DOCQUEUE_EMBEDDING__PROVIDER", "openai"), ("DOCQUEUE_EMBEDDING__BASE_URL", "http://127.0.0.1:1/v1")];
    let report = doctor(&test, &server, &[base, &admin], &embedding).await;
    assert!(!report.success);
    assert_eq!(report.status("workers"), "WARN");
    assert!(report.line("workers").contains("jobs will wait (1 waiting now)"), "{}", report.output);
    assert_eq!(report.status("embedding"), "WARN");
    assert!(report.line("embedding").contains("answers 000"), "{}", report.output);

    // The guide's cancel, for a job that would wait for ever.
    let cancel = guide_command("/api/admin/queue/cancel/");
    let job_id = doc["job_id"].as_str().unwrap();
    let answer = run_guide_command(&cancel, &[("URL", base), ("ADMIN", &admin), ("JOB_ID", job_id)]).await;
    assert!(answer.contains(r#""queue_status":"cancelled""#), "{answer}");
}

#[actix_web::test]
async fn doctor_names_an_evicting_redis_and_then_a_stopped_one() {
    let own = OwnRedis::start();
    let test = TestEnv::with_redis(&own.url);
    let mut redis = test.redis();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("allkeys-lru").query(&mut redis).unwrap();
    let server = ServerProcess::start(&test, &[]).await;
    let admin = admin_token("ops");
    let args = [server.http.base.as_str(), admin.as_str()];
    let evicting = doctor(&test, &server, &args, &[]).await;
    assert_eq!(evicting.status("redis-memory"), "WARN");
    assert!(evicting.line("redis-memory").contains("policy allkeys-lru"), "{}", evicting.output);
    let fix = guide_command("CONFIG SET maxmemory-policy noeviction");
    assert!(evicting.output.contains(&fix), "{}", evicting.output);
    run_guide_command(&fix, &[("KEYS_URL", &own.url)]).await;
    let policy: (String, String) = redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy").query(&mut redis).unwrap();
    assert_eq!(policy.1, "noeviction");

    drop(own);
    let down = doctor(&test, &server, &args, &[]).await;
    assert!(!down.success);
    assert_eq!(down.status("redis"), "WARN");
    assert!(down.line("redis").contains("Redis does not answer"), "{}", down.output);
    assert!(down.line("readyz").contains("redis unavailable"), "{}", down.output);
}

/// The lines of the `sh` blocks of a Markdown text, trimmed.
fn sh_lines(markdown: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut inside = false;
    for line in markdown.lines().map(str::trim) {
        match (inside, line) {
            (false, "```sh") => inside = true,
            (true, "```") => inside = false,
            (true, line) => lines.push(line),
            _ => {}
        }
    }
    lines
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn the_guide_prints_the_commands_the_doctor_runs_and_every_pointer_to_it_lands() {
    let guide = repo_file("docs/troubleshooting.md");
    let doctor = repo_file("scripts/doctor.sh");
    for line in sh_lines(&guide) {
        // Settings (`P=docq:`) and the doctor's own invocation are not checks.
        let setting = line.split_once('=').is_some_and(|(name, value)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !value.contains('$')
        });
        if line.is_empty() || line.starts_with('#') || setting || line.starts_with("scripts/doctor.sh") {
            continue;
        }
        assert!(doctor.contains(line), "the guide's command is not the doctor's:\n{line}");
    }
    for check in CHECKS {
        assert!(guide.contains(&format!("`{check}`")), "the guide does not mention the doctor's `{check}`");
    }
    let anchors: Vec<String> = guide.lines().filter_map(|l| l.strip_prefix("## ")).map(anchor).collect();
    let sections = doctor.split("section ").skip(1).map(|rest| rest.split(')').next().unwrap().to_string());
    let alerts = repo_file("docker/prometheus/alerts.yml");
    let runbooks =
        alerts.split("docs/troubleshooting.md#").skip(1).map(|rest| rest.lines().next().unwrap().to_string());
    for target in sections.chain(runbooks) {
        assert!(anchors.contains(&target), "no section #{target} in the guide ({anchors:?})");
    }
    let readme = repo_file("README.md");
    for linked in ["docs/troubleshooting.md", "docker/prometheus/alerts.yml", "scripts/doctor.sh"] {
        assert!(readme.contains(linked), "README does not point to {linked}");
    }
}

/// promtool passes a rule file whose alerts are never tested, and a test that only ever
/// expects silence: every alert must have a case where it fires and one where it does not.
#[test]
fn every_alert_rule_has_a_firing_and_a_quiet_case() {
    let rules = repo_file("docker/prometheus/alerts.yml");
    let tests = repo_file("docker/prometheus/alerts_test.yml");
    let alerts: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    assert!(alerts.len() >= 7, "{alerts:?}");
    // alertname -> (firing cases, quiet cases); a quiet case reads `exp_alerts: []`.
    let mut cases: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some(name) = line.strip_prefix("alertname: ") {
            let entry = cases.entry(name).or_default();
            match lines.get(i + 1) {
                Some(&"exp_alerts: []") => entry.1 += 1,
                _ => entry.0 += 1,
            }
        }
    }
    for alert in &alerts {
        let (firing, quiet) = cases.get(alert).copied().unwrap_or_default();
        assert!(firing > 0 && quiet > 0, "{alert}: {firing} firing and {quiet} quiet cases");
    }
    let unknown: Vec<&&str> = cases.keys().filter(|name| !alerts.contains(name)).collect();
    assert!(unknown.is_empty(), "tests of alerts alerts.yml does not have: {unknown:?}");
}
