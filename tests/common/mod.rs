//! Shared test harness: a fresh database (SQLite file or a new PostgreSQL database,
//! chosen by TEST_DATABASE), a Redis key prefix of the test's own on the real Redis,
//! a storage directory, and a server started in-process on a free port.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod doctor;
pub mod embeddings_api;
pub mod hostile;
pub mod pdf_writer;
pub mod processors;
pub mod scans;
pub mod webdriver;
pub mod ws;
#[path = "../fixtures/zip_bomb.rs"]
pub mod zip_bomb;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::{Connection, RunQueryDsl};
use docqueue::app::{self, Role, RunningApp};
use docqueue::auth::{Role as TokenRole, TokenKeys};
use docqueue::config::{AuthConfig, Config};
use docqueue::processing::Processor;
use serde_json::{json, Value};

pub const SECRET: &str = "test-secret-for-docqueue-tests-0123456789";

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

fn postgres_base_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The URL of database `name` on the server of `base`, with `base`'s parameters. With
/// none, TLS is off: the tests' server runs on this machine, and a pool thread that
/// connects over TLS while a test process exits can crash it in OpenSSL's exit handlers
/// (SIGSEGV after every test passed).
fn postgres_url_of(base: &str, name: &str) -> String {
    let (server, parameters) = base.split_once('?').unwrap_or((base, "sslmode=disable"));
    format!("{}/{name}?{parameters}", server.rsplit_once('/').unwrap().0)
}

pub fn uses_postgres() -> bool {
    std::env::var("TEST_DATABASE").as_deref() == Ok("postgres")
}

/// Everything one test owns; removed when dropped.
pub struct TestEnv {
    pub dir: PathBuf,
    pub database_url: String,
    pub redis_url: String,
    pub redis_prefix: String,
    postgres_db: Option<String>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv::with_redis(&redis_url())
    }

    pub fn with_redis(redis_url: &str) -> TestEnv {
        let id = ulid::Ulid::generate().to_string().to_lowercase();
        let dir = std::env::temp_dir().join("docqueue-tests").join(&id);
        std::fs::create_dir_all(&dir).unwrap();
        let (database_url, postgres_db) = if uses_postgres() {
            let name = format!("dq_{id}");
            let base = postgres_base_url();
            let mut conn = diesel::PgConnection::establish(&base).expect("PostgreSQL for tests");
            diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn).unwrap();
            let url = postgres_url_of(&base, &name);
            (url, Some(name))
        } else {
            (dir.join("docqueue.sqlite3").display().to_string(), None)
        };
        TestEnv {
            dir,
            database_url,
            redis_url: redis_url.to_string(),
            redis_prefix: format!("dqtest:{id}:"),
            postgres_db,
        }
    }

    pub fn storage_root(&self) -> PathBuf {
        self.dir.join("storage")
    }

    /// The configuration every test starts from, with `overrides` merged on top
    /// (a JSON object shaped like config/default.toml).
    pub fn config(&self, overrides: Value) -> Config {
        let mut base = json!({
            "server": { "host": "127.0.0.1", "port": 0, "workers": 2 },
            "redis": { "url": self.redis_url, "prefix": self.redis_prefix, "pool_size": 8 },
            "database": { "url": self.database_url, "pool_size": 4 },
            "storage": { "root": self.storage_root() },
            "auth": { "jwt_secret": SECRET, "dev_mode": false },
            "processing": { "extractor_program": env!("CARGO_BIN_EXE_docqueue-extract") },
            "document_queue": {
                "lease_ms": 3000, "heartbeat_ms": 1000, "maintenance_interval_ms": 500,
                "backoff_base_ms": 200, "backoff_max_ms": 2000, "shutdown_grace_secs": 10
            },
        });
        merge(&mut base, overrides);
        Config::from_overrides(base).expect("test configuration")
    }

    /// The same configuration as environment variables, for a server run as a process.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        vec![
            ("DATABASE_URL".into(), self.database_url.clone()),
            ("REDIS_URL".into(), self.redis_url.clone()),
            ("DOCQUEUE_REDIS__PREFIX".into(), self.redis_prefix.clone()),
            ("DOCQUEUE_STORAGE__ROOT".into(), self.storage_root().display().to_string()),
            ("DOCQUEUE_AUTH__JWT_SECRET".into(), SECRET.into()),
            ("DOCQUEUE_AUTH__DEV_MODE".into(), "false".into()),
            ("DOCQUEUE_SERVER__HOST".into(), "127.0.0.1".into()),
            ("DOCQUEUE_DOCUMENT_QUEUE__LEASE_MS".into(), "3000".into()),
            ("DOCQUEUE_DOCUMENT_QUEUE__HEARTBEAT_MS".into(), "1000".into()),
            ("DOCQUEUE_DOCUMENT_QUEUE__MAINTENANCE_INTERVAL_MS".into(), "500".into()),
        ]
    }

    pub fn redis(&self) -> redis::Connection {
        redis::Client::open(self.redis_url.as_str()).unwrap().get_connection().unwrap()
    }

    /// Files under the storage root (uploaded and staging), to check nothing is left behind.
    pub fn stored_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.storage_root(), &mut out);
        out
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Ok(mut conn) = redis::Client::open(self.redis_url.as_str()).and_then(|c| c.get_connection()) {
            let keys: Vec<String> =
                redis::cmd("KEYS").arg(format!("{}*", self.redis_prefix)).query(&mut conn).unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
            }
        }
        if let Some(name) = &self.postgres_db {
            if let Ok(mut conn) = diesel::PgConnection::establish(&postgres_base_url()) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn);
            }
        }
    }
}

fn merge(base: &mut Value, overrides: Value) {
    match (base, overrides) {
        (Value::Object(base), Value::Object(overrides)) => {
            for (key, value) in overrides {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (slot, value) => *slot = value,
    }
}

/// A one-byte text job `id` of `user`'s document `doc-<id>`, for tests that drive the
/// queue directly.
pub fn text_job(id: &str, user: &str) -> docqueue::queue::NewJob {
    docqueue::queue::NewJob {
        job_id: id.into(),
        document_id: format!("doc-{id}"),
        user_id: user.into(),
        priority: 0,
        content_type: "text/plain".into(),
        size_bytes: 1,
        filename: format!("{id}.txt"),
    }
}

/// A queued row of alice's Markdown document `id`, as an upload would create it (its
/// file is never read), for tests that drive the database directly.
pub fn queued_row(id: &str) -> docqueue::db::models::Document {
    let file = docqueue::db::models::FileFacts {
        filename: format!("{id}.md"),
        content_type: "text/markdown".into(),
        size_bytes: 10,
        sha256: "0".repeat(64),
        storage_path: format!("alice/{id}"),
    };
    docqueue::db::models::Document::queued(id.to_string(), "alice", file, 0, chrono::Utc::now().naive_utc())
}

/// The test's database, migrated, with `overrides` applied to its configuration.
pub fn migrated_db(env: &TestEnv, overrides: Value) -> docqueue::db::Db {
    let db = docqueue::db::Db::connect(&env.config(overrides).database).unwrap();
    db.migrate().unwrap();
    db
}

pub fn token(user: &str) -> String {
    keys().issue(user, TokenRole::User, Duration::from_secs(3600)).unwrap()
}

pub fn admin_token(user: &str) -> String {
    keys().issue(user, TokenRole::Admin, Duration::from_secs(3600)).unwrap()
}

fn keys() -> TokenKeys {
    TokenKeys::from_config(&AuthConfig { jwt_secret: SECRET.into(), dev_mode: false }).unwrap()
}

/// A server started in-process by the test.
pub struct TestServer {
    pub app: Option<RunningApp>,
    pub base: String,
    pub client: reqwest::Client,
}

impl TestServer {
    pub async fn start(config: Config, role: Role) -> TestServer {
        let app = app::start(config, role).await.expect("server starts");
        TestServer::from_app(app)
    }

    pub async fn start_with(config: Config, role: Role, processor: Arc<dyn Processor>) -> TestServer {
        let app = app::start_with_processor(Arc::new(config), role, processor).await.expect("server starts");
        TestServer::from_app(app)
    }

    fn from_app(app: RunningApp) -> TestServer {
        let base = app.http_addr.map(|a| format!("http://{a}")).unwrap_or_default();
        TestServer { app: Some(app), base, client: http_client() }
    }

    pub fn app(&self) -> &RunningApp {
        self.app.as_ref().unwrap()
    }

    pub async fn shutdown(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn upload(&self, token: &str, files: &[(&str, Vec<u8>)], priority: Option<i32>) -> reqwest::Response {
        let mut form = reqwest::multipart::Form::new();
        for (name, bytes) in files {
            form = form.part("file", reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string()));
        }
        if let Some(priority) = priority {
            form = form.text("priority", priority.to_string());
        }
        self.upload_form(token, form).await
    }

    /// Posts any multipart form to the upload route.
    pub async fn upload_form(&self, token: &str, form: reqwest::multipart::Form) -> reqwest::Response {
        self.client.post(self.url("/api/documents/upload")).bearer_auth(token).multipart(form).send().await.unwrap()
    }

    /// Uploads one file and returns its document JSON from the 202 answer.
    pub async fn upload_one(&self, token: &str, name: &str, bytes: Vec<u8>) -> Value {
        let response = self.upload(token, &[(name, bytes)], None).await;
        assert_eq!(response.status(), 202, "upload of {name}");
        let body: Value = response.json().await.unwrap();
        body["documents"][0].clone()
    }

    pub async fn get_json(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).bearer_auth(token).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn document(&self, token: &str, id: &str) -> Value {
        let (status, body) = self.get_json(token, &format!("/api/documents/{id}")).await;
        assert_eq!(status, 200, "GET document {id}: {body}");
        body
    }

    /// Polls the document until `done` holds; panics with the last state after `limit`.
    pub async fn wait_for(&self, token: &str, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let doc = self.document(token, id).await;
            if done(&doc) {
                return doc;
            }
            if start.elapsed() > limit {
                panic!("document {id} did not reach the expected state; last: {doc}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_for_status(&self, token: &str, id: &str, status: &str) -> Value {
        self.wait_for(token, id, Duration::from_secs(60), |d| d["queue_status"] == status).await
    }

    /// Waits until the process's `workers` workers have answered more than `workers`
    /// claim attempts from now on. At most `workers` were under way when it began, so at
    /// least one attempt began later and saw the queue as it is now: what it did not
    /// claim was not claimable. Idle workers are woken the way new work wakes them, so
    /// this takes milliseconds instead of their idle wait.
    pub async fn wait_for_a_later_claim(&self, workers: usize) {
        let attempts = |scrape: &prometheus_parse::Scrape| value(scrape, "docqueue_worker_claim_attempts_total", None);
        let start = attempts(&scrape(self).await);
        let queue = &self.app().queue;
        let mut redis = queue.connection().await.unwrap();
        let _: () =
            redis::AsyncCommands::lpush(&mut redis, queue.keys().wake(), vec!["test"; workers + 1]).await.unwrap();
        eventually(Duration::from_secs(30), "a claim attempt begun after this point", || async move {
            (attempts(&scrape(self).await) > start + workers as f64).then_some(())
        })
        .await;
    }

    /// Waits until a `task` maintenance pass that began after this call has finished.
    /// Passes of one task never overlap, so the second to finish from now began later.
    pub async fn wait_for_a_later_maintenance_pass(&self, task: &str) {
        let runs =
            |scrape: &prometheus_parse::Scrape| value(scrape, "docqueue_maintenance_runs_total", Some(("task", task)));
        let start = runs(&scrape(self).await);
        eventually(Duration::from_secs(30), &format!("a {task} pass begun after this point"), || async move {
            (runs(&scrape(self).await) >= start + 2.0).then_some(())
        })
        .await;
    }
}

/// The server's `/metrics`, parsed.
pub async fn scrape(server: &TestServer) -> prometheus_parse::Scrape {
    let response = server.client.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("Prometheus text format")
}

/// A figure from a scrape, summed over the samples that have `label` (all when None).
pub fn value(scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            prometheus_parse::Value::Summary(_) => 0.0,
        })
        .sum()
}

/// An HTTP client. reqwest is built with `rustls-no-provider` (Cargo.toml), so it has
/// no crypto provider of its own: ring's is installed first.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name))
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Polls `check` until it returns Some, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if start.elapsed() > limit {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `docqueue serve` process started by the test, as an operator runs it: its process
/// id, memory and children can be watched from outside. Its log goes to `server.log` in
/// the test's directory. Killed when dropped.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub http: TestServer,
    pub log: PathBuf,
}

impl ServerProcess {
    /// Starts `docqueue serve --role all` on a free port with the test's configuration
    /// plus `env` (`DOCQUEUE_SECTION__KEY` names), and waits until it answers.
    pub async fn start(test: &TestEnv, env: &[(&str, String)]) -> ServerProcess {
        ServerProcess::start_as(test, "all", env).await
    }

    /// `start` with another role that serves HTTP: `api` runs no workers.
    pub async fn start_as(test: &TestEnv, role: &str, env: &[(&str, String)]) -> ServerProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = test.dir.join("server.log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_docqueue"))
            .args(["serve", "--role", role])
            .envs(test.env_vars())
            .env("DOCQUEUE_SERVER__PORT", port.to_string())
            .envs(env.iter().map(|(k, v)| (k.to_string(), v.clone())))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let http = TestServer { app: None, base: format!("http://127.0.0.1:{port}"), client: http_client() };
        let server = ServerProcess { child, http, log };
        eventually(Duration::from_secs(30), "the server to answer", || {
            let request = server.http.client.get(server.http.url("/healthz")).send();
            async move { request.await.ok().filter(|r| r.status() == 200).map(|_| ()) }
        })
        .await;
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's descendants: its extractor processes and what they started.
    pub fn descendants(&self) -> Vec<u32> {
        descendants_of(self.pid())
    }

    /// A figure from /proc/PID/status, in KiB (`VmRSS`, `VmHWM`).
    pub fn memory_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `pid` is a running process (a zombie waiting to be reaped is not).
pub fn is_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()).unwrap_or("X");
    !matches!(state, "Z" | "X")
}

/// Live processes whose parent is `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        // Fields after the parenthesised command name: state, then the parent's pid.
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        if fields.next().and_then(|ppid| ppid.parse::<u32>().ok()) == Some(pid) && state != "Z" {
            children.push(child);
        }
    }
    children
}

/// `pid`'s children, their children, and so on (zombies left out).
pub fn descendants_of(pid: u32) -> Vec<u32> {
    let mut found = children_of(pid);
    let mut i = 0;
    while i < found.len() {
        found.extend(children_of(found[i]));
        i += 1;
    }
    found
}

/// CPU time a process has used, in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name.
    fields.get(11).zip(fields.get(12)).map_or(0, |(u, s)| u.parse::<u64>().unwrap_or(0) + s.parse::<u64>().unwrap_or(0))
}

/// A Redis server of the test's own (for tests that FLUSHALL or kill connections).
/// Whether the Redis at `url` answers and is the process `pid`: a port found free can
/// be taken by another test's server before this one binds it.
pub fn redis_answers_as(url: &str, pid: u32) -> bool {
    let info: Option<String> = redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .ok()
        .and_then(|mut conn| redis::cmd("INFO").arg("server").query(&mut conn).ok());
    info.is_some_and(|info| info.lines().any(|line| line.trim() == format!("process_id:{pid}")))
}

pub struct OwnRedis {
    child: std::process::Child,
    pub url: String,
}

impl OwnRedis {
    pub fn start() -> OwnRedis {
        // A port found free can be taken by another test before Redis binds it: then
        // Redis exits, and it is started again on another port.
        for _ in 0..3 {
            // A statement of its own: the listener must be closed before Redis binds the port.
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            if let Some(redis) = OwnRedis::start_on(port) {
                return redis;
            }
        }
        panic!("redis-server did not start on a free port, three times");
    }

    /// Stops this server and starts a new, empty one on the same port.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port = self.url.trim_end_matches('/').rsplit(':').next().unwrap().parse().unwrap();
        *self = OwnRedis::start_on(port).unwrap_or_else(|| panic!("redis-server did not start again on port {port}"));
    }

    /// A Redis on `port`, answering; None if it exited (the port was taken) or did not
    /// answer within 5 s.
    fn start_on(port: u16) -> Option<OwnRedis> {
        let mut child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH (scripts/test.sh installs it)");
        let url = format!("redis://127.0.0.1:{port}/");
        for _ in 0..100 {
            if child.try_wait().ok().flatten().is_some() {
                return None;
            }
            if redis_answers_as(&url, child.id()) {
                return Some(OwnRedis { child, url });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
