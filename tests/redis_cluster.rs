//! docqueue on a real Redis Cluster of three masters, started by the test from
//! `redis-server --cluster-enabled yes` and joined by `redis-cli --cluster create`:
//! uploads, processing, WebSocket events, cancel and the rescue of a killed worker
//! process's job all go through the cluster, and scripts/doctor.sh reads it.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::ws::WsClient;
use common::{token, TestEnv, TestServer};
use docqueue::app::Role;
use docqueue::config::{Config, ConfigError};
use docqueue::job_state::JobState;
use docqueue::queue::ClaimedJob;
use redis::Commands;
use serde_json::{json, Value};

/// Three masters on free ports, each holding a third of the slots; killed and removed
/// when dropped.
struct RedisCluster {
    dir: PathBuf,
    nodes: Vec<Child>,
    ports: Vec<u16>,
}

impl RedisCluster {
    fn start() -> RedisCluster {
        // Ports found free can be taken by another test before a node binds them: a
        // node that exits at once is started again on other ports.
        for _ in 0..3 {
            if let Some(cluster) = RedisCluster::start_nodes() {
                return cluster.joined();
            }
        }
        panic!("three redis-server nodes did not start, three times");
    }

    /// Three cluster-enabled nodes on free ports, answering; None if one exited.
    fn start_nodes() -> Option<RedisCluster> {
        let dir = std::env::temp_dir().join("docqueue-tests").join(format!("cluster-{}", ulid::Ulid::generate()));
        std::fs::create_dir_all(&dir).unwrap();
        // A client port and a cluster bus port per node, all free. The bus port is set:
        // the default (port + 10000) can be past 65535 for an ephemeral port.
        let listeners: Vec<TcpListener> = (0..6).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
        let free: Vec<u16> = listeners.iter().map(|l| l.local_addr().unwrap().port()).collect();
        drop(listeners);
        let mut cluster = RedisCluster { dir, nodes: Vec::new(), ports: free[..3].to_vec() };
        for (port, bus_port) in free[..3].iter().zip(&free[3..]) {
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--cluster-port", &bus_port.to_string()])
                .args(["--bind", "127.0.0.1", "--cluster-enabled", "yes"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .arg("--dir")
                .arg(&cluster.dir)
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server on PATH (scripts/test.sh installs it)");
            cluster.nodes.push(child);
        }
        let start = Instant::now();
        for (i, port) in cluster.ports.clone().into_iter().enumerate() {
            let pid = cluster.nodes[i].id();
            while !common::redis_answers_as(&cluster.url(port), pid) {
                let exited = cluster.nodes[i].try_wait().ok().flatten().is_some();
                if exited || start.elapsed() > Duration::from_secs(10) {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Some(cluster)
    }

    /// The nodes made one cluster, every slot served.
    fn joined(self) -> RedisCluster {
        let cluster = self;
        let addresses: Vec<String> = cluster.ports.iter().map(|port| format!("127.0.0.1:{port}")).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli on PATH (scripts/test.sh installs it)");
        assert!(created.status.success(), "redis-cli --cluster create: {}", String::from_utf8_lossy(&created.stdout));
        for port in cluster.ports.clone() {
            wait_until(Duration::from_secs(30), &format!("cluster_state:ok on port {port}"), || {
                let info: Option<String> =
                    cluster.node(port).and_then(|mut node| redis::cmd("CLUSTER").arg("INFO").query(&mut node).ok());
                info.is_some_and(|info| info.lines().any(|line| line.trim() == "cluster_state:ok"))
            });
        }
        cluster
    }

    fn url(&self, port: u16) -> String {
        format!("redis://127.0.0.1:{port}/")
    }

    /// A plain (not cluster-aware) connection to one node, if it answers.
    fn node(&self, port: u16) -> Option<redis::Connection> {
        let mut conn = redis::Client::open(self.url(port)).ok()?.get_connection().ok()?;
        let pong: String = redis::cmd("PING").query(&mut conn).ok()?;
        (pong == "PONG").then_some(conn)
    }

    /// The port of the master that serves `key`'s slot.
    fn master_of(&self, key: &str) -> u16 {
        let mut node = self.node(self.ports[0]).unwrap();
        let slot: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query(&mut node).unwrap();
        // CLUSTER SLOTS: [start, end, [ip, port, id], replicas…] per range.
        let ranges: Vec<Vec<Value>> = redis::cmd("CLUSTER").arg("SLOTS").query(&mut node).map(redis_json).unwrap();
        ranges
            .iter()
            .find(|range| range[0].as_i64().unwrap() <= slot && slot <= range[1].as_i64().unwrap())
            .map(|range| range[2][1].as_u64().unwrap() as u16)
            .expect("every slot is served")
    }

    /// Keys matching `pattern` on one node alone.
    fn keys_on(&self, port: u16, pattern: &str) -> Vec<String> {
        self.node(port).unwrap().keys(pattern).unwrap()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// CLUSTER SLOTS as JSON arrays, to index into.
fn redis_json(value: redis::Value) -> Vec<Vec<Value>> {
    fn convert(value: &redis::Value) -> Value {
        match value {
            redis::Value::Int(n) => json!(n),
            redis::Value::BulkString(bytes) => json!(String::from_utf8_lossy(bytes)),
            redis::Value::SimpleString(text) => json!(text),
            redis::Value::Array(items) => Value::Array(items.iter().map(convert).collect()),
            _ => Value::Null,
        }
    }
    match convert(&value) {
        Value::Array(ranges) => ranges.into_iter().map(|r| r.as_array().cloned().unwrap_or_default()).collect(),
        other => panic!("CLUSTER SLOTS answered {other}"),
    }
}

/// Polls `check` until it holds, for at most `limit`.
fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A worker process as operators run it against the cluster, one job at a time, whose
/// embedding requests go to `stalled`, a socket that never answers: its job stays
/// mid-flight until the process is killed.
fn spawn_stalled_worker_process(env: &TestEnv, stalled: &TcpListener) -> Child {
    Command::new(env!("CARGO_BIN_EXE_docqueue"))
        .args(["serve", "--role", "worker"])
        .envs(env.env_vars())
        .env("DOCQUEUE_REDIS__CLUSTER", "true")
        .env("DOCQUEUE_DOCUMENT_QUEUE__CONCURRENCY", "1")
        .env("DOCQUEUE_EMBEDDING__PROVIDER", "openai")
        .env("DOCQUEUE_EMBEDDING__BASE_URL", format!("http://{}/v1", stalled.local_addr().unwrap()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(env.dir.join("worker.log")).unwrap())
        .spawn()
        .unwrap()
}

#[actix_web::test]
async fn upload_processing_cancel_and_rescue_work_on_a_three_master_redis_cluster() {
    let cluster = RedisCluster::start();
    let prefix = format!("dqtest:{{{}}}:", ulid::Ulid::generate().to_string().to_lowercase());
    // docqueue is told of one node only, and not the one that holds its keys: it has to
    // discover the cluster and route every command (and a single-node client would be
    // answered MOVED).
    let home = cluster.master_of(&prefix);
    let seed = *cluster.ports.iter().find(|port| **port != home).unwrap();
    let mut env = TestEnv::with_redis(&cluster.url(seed));
    env.redis_prefix = prefix.clone();
    let config = env.config(json!({ "redis": { "cluster": true } }));

    let stalled = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut worker_process = spawn_stalled_worker_process(&env, &stalled);
    let api = TestServer::start(config.clone(), Role::Api).await;
    // The API process's progress hub subscribes on the node it was given, which is not
    // the node whose scripts PUBLISH: events cross the cluster bus to reach it.
    let events = format!("{prefix}events");
    common::eventually(Duration::from_secs(30), "the progress hub to subscribe", || {
        let subscribers = cluster.node(seed).and_then(|mut node| {
            redis::cmd("PUBSUB").arg("NUMSUB").arg(&events).query::<(String, u64)>(&mut node).ok()
        });
        async move { subscribers.filter(|(_, n)| *n > 0).map(|_| ()) }
    })
    .await;
    let alice = token("alice");
    let mut ws = WsClient::connect(&api.base, &alice).await;
    ws.snapshot().await;

    // Upload: the worker process claims the job through the cluster.
    let stuck = api.upload_one(&alice, "stuck.txt", b"a job whose worker process dies".to_vec()).await;
    let (stuck_id, stuck_job) = (stuck["id"].as_str().unwrap().to_string(), stuck["job_id"].as_str().unwrap());
    let marker = format!(":{}:", worker_process.id());
    let running = api
        .wait_for(&alice, &stuck_id, Duration::from_secs(30), |d| {
            d["queue_status"] == "processing" && d["worker_id"].as_str().is_some_and(|w| w.contains(&marker))
        })
        .await;
    assert_eq!(running["attempts"], 1);

    // Cancel: the worker process is busy, so the next upload waits, and is cancelled.
    let waiting = api.upload_one(&alice, "waiting.txt", b"never runs".to_vec()).await;
    let waiting_id = waiting["id"].as_str().unwrap().to_string();
    assert_eq!(waiting["queue_status"], "queued", "{waiting}");
    let response = api
        .client
        .delete(api.url(&format!("/api/documents/cancel/{waiting_id}")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(api.document(&alice, &waiting_id).await["queue_status"], "cancelled");
    ws.collect_until(Duration::from_secs(10), |f| f["type"] == "document.cancelled" && f["document_id"] == waiting_id)
        .await;

    // Rescue: SIGKILL the worker process; a worker in this process runs its job again.
    let cluster_client = redis::cluster::ClusterClient::new(vec![cluster.url(seed)]).unwrap();
    let mut cluster_conn = cluster_client.get_connection().unwrap();
    let stale_token: String = cluster_conn.hget(format!("{prefix}job:{stuck_job}"), "token").unwrap();
    worker_process.kill().unwrap();
    worker_process.wait().unwrap();
    let worker = TestServer::start(config, Role::Worker).await;
    let frames = ws
        .collect_until(Duration::from_secs(60), |f| f["type"] == "document.completed" && f["document_id"] == stuck_id)
        .await;
    let rescued = api.document(&alice, &stuck_id).await;
    assert_eq!(rescued["queue_status"], "completed", "{rescued}");
    assert_eq!(rescued["attempts"], 2, "{rescued}");
    let this_process = format!(":{}:", std::process::id());
    assert!(rescued["worker_id"].as_str().is_some_and(|w| w.contains(&this_process)), "{rescued}");
    assert!(rescued["chunk_count"].as_i64().unwrap() > 0, "{rescued}");
    assert!(frames.iter().any(|f| f["type"] == "document.progress" && f["document_id"] == stuck_id), "{frames:#?}");
    // The killed process's late completion, with its old token, is refused.
    let stale = ClaimedJob {
        job_id: stuck_job.to_string(),
        document_id: stuck_id.clone(),
        user_id: "alice".into(),
        token: stale_token,
        attempts: 1,
        content_type: "text/plain".into(),
        size_bytes: 0,
        enqueued_at_ms: 0,
        started_at_ms: 0,
    };
    assert!(!api.app().queue.end_job(&stale, JobState::Failed, "late").await.unwrap());

    // Upload → completed, start to end on the cluster.
    let fresh = api.upload_one(&alice, "notes.md", b"# Notes\n\nProcessed on a Redis Cluster.\n".to_vec()).await;
    let fresh_id = fresh["id"].as_str().unwrap().to_string();
    ws.collect_until(Duration::from_secs(60), |f| f["type"] == "document.completed" && f["document_id"] == fresh_id)
        .await;
    let done = api.document(&alice, &fresh_id).await;
    assert_eq!((done["queue_status"].as_str(), done["attempts"].as_i64()), (Some("completed"), Some(1)), "{done}");
    assert_eq!(api.document(&alice, &waiting_id).await["queue_status"], "cancelled");

    // Readiness, and the admin's figures: counts, throughput and histograms from the
    // node of the keys, and that node's memory (INFO is sent there, not to every node).
    let ready = api.client.get(api.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let admin = common::admin_token("root");
    let (status, body) = api.get_json(&admin, "/api/admin/queue/status").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["counts"]["completed"].as_u64(), body["counts"]["cancelled"].as_u64()), (Some(2), Some(1)));
    assert!(body["throughput"]["last_15m"].as_f64().unwrap() > 0.0, "{body}");
    assert!(body["redis_used_memory_bytes"].as_u64().unwrap() > 0, "{body}");

    // An idle worker's blocking wait for work may outlast the time limit of short
    // commands (2 s on a cluster): nothing is pushed to the wake list meanwhile.
    let queue = &api.app().queue;
    let _: () = cluster_conn.del(queue.keys().wake()).unwrap();
    let mut blocking = queue.dedicated_connection().await.unwrap();
    queue.wait_for_work(&mut blocking, Duration::from_secs(3)).await.expect("a 3 s wait for work");

    // Every key docqueue wrote is on the one node that serves its prefix's hash tag.
    let pattern = format!("{prefix}*");
    assert!(cluster.keys_on(home, &pattern).len() > 5, "{:?}", cluster.keys_on(home, &pattern));
    for port in cluster.ports.iter().filter(|port| **port != home) {
        assert_eq!(cluster.keys_on(*port, &pattern), Vec::<String>::new(), "keys on node {port}");
    }
    worker.shutdown().await;
    api.shutdown().await;
}

#[test]
fn a_cluster_needs_a_hash_tagged_prefix_and_several_nodes_need_cluster_mode() {
    let invalid_key = |overrides: Value| match Config::from_overrides(json!({ "redis": overrides })) {
        Err(ConfigError::Invalid { key, .. }) => Some(key),
        Ok(_) => None,
        Err(other) => panic!("{other}"),
    };
    assert_eq!(invalid_key(json!({ "cluster": true, "prefix": "docq:" })), Some("redis.prefix"));
    // `{}` is no hash tag: Redis then hashes the whole key.
    assert_eq!(invalid_key(json!({ "cluster": true, "prefix": "{}docq:" })), Some("redis.prefix"));
    assert_eq!(invalid_key(json!({ "cluster": true, "prefix": "{docq}:" })), None);
    assert_eq!(invalid_key(json!({ "cluster": true, "prefix": "tenant:{docq}:" })), None);
    let nodes = "redis://10.0.0.1:6379, redis://10.0.0.2:6379";
    assert_eq!(invalid_key(json!({ "url": nodes, "prefix": "{docq}:" })), Some("redis.url"));
    let config = Config::from_overrides(json!({ "redis": { "url": nodes, "cluster": true, "prefix": "{docq}:" } }));
    assert_eq!(config.unwrap().redis.node_urls(), ["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"]);
}

/// scripts/doctor.sh pointed at a node that neither holds docqueue's keys nor has the
/// progress hub's subscription still finds the live worker process (its key is on the
/// master of the prefix's slot) and the listening API process (on another node).
#[actix_web::test]
async fn the_doctor_reads_the_keys_master_and_counts_listeners_on_every_node() {
    let cluster = RedisCluster::start();
    let prefix = format!("dqtest:{{{}}}:", ulid::Ulid::generate().to_string().to_lowercase());
    let home = cluster.master_of(&prefix);
    let others: Vec<u16> = cluster.ports.iter().copied().filter(|port| *port != home).collect();
    let (seed, asked) = (others[0], others[1]);
    let mut env = TestEnv::with_redis(&cluster.url(seed));
    env.redis_prefix = prefix.clone();
    let server = TestServer::start(env.config(json!({ "redis": { "cluster": true } })), Role::All).await;
    let events = format!("{prefix}events");
    common::eventually(Duration::from_secs(30), "a live worker process and a listening hub", || {
        let hubs = cluster.node(seed).and_then(|mut node| {
            redis::cmd("PUBSUB").arg("NUMSUB").arg(&events).query::<(String, u64)>(&mut node).ok()
        });
        let alive = !cluster.keys_on(home, &format!("{prefix}alive:*")).is_empty();
        async move { (alive && hubs.is_some_and(|(_, n)| n > 0)).then_some(()) }
    })
    .await;

    let admin = common::admin_token("ops");
    let mut vars = env.env_vars();
    vars.push(("REDIS_URL".into(), cluster.url(asked)));
    let report = common::doctor::run(&[&server.base, &admin], vars).await;
    assert_eq!(report.status("workers"), "OK", "{}", report.output);
    assert!(report.line("workers").contains("1 worker processes alive"), "{}", report.output);
    assert_eq!(report.status("events"), "OK", "{}", report.output);
    assert!(report.line("events").contains("1 processes receive events"), "{}", report.output);
    assert_eq!(report.status("prefix"), "OK", "{}", report.output);
    server.shutdown().await;
}
