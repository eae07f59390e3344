//! Liveness and readiness probes.

mod common;

use common::{OwnRedis, TestEnv, TestServer};
use docqueue::app::Role;
use docqueue::queue::Queue;
use serde_json::{json, Value};

#[actix_web::test]
async fn healthz_and_readyz_answer_when_everything_is_up() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::Api).await;
    let health = server.client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = server.client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"], json!({ "database": "ok", "redis": "ok" }));
    server.shutdown().await;
}

#[actix_web::test]
async fn readyz_is_503_naming_redis_when_redis_is_unreachable() {
    // Port 1 on loopback: nothing listens there.
    let env = TestEnv::with_redis("redis://127.0.0.1:1/");
    let server = TestServer::start(env.config(json!({})), Role::Api).await;
    let ready = server.client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["redis"], "unavailable");
    assert_eq!(body["checks"]["database"], "ok");
    assert!(body["error"]["message"].as_str().unwrap().contains("redis"), "{body}");
    let health = server.client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    server.shutdown().await;
}

#[actix_web::test]
async fn upload_is_accepted_and_kept_queued_while_redis_is_unreachable() {
    let env = TestEnv::with_redis("redis://127.0.0.1:1/");
    let server = TestServer::start(env.config(json!({})), Role::Api).await;
    let alice = common::token("alice");
    let doc = server.upload_one(&alice, "note.md", b"# Note\n\ntext\n".to_vec()).await;
    assert_eq!(doc["queue_status"], "queued");
    assert_eq!(doc["queue_position"], Value::Null);
    let row = server.document(&alice, doc["id"].as_str().unwrap()).await;
    assert_eq!(row["queue_status"], "queued");
    server.shutdown().await;
}

#[actix_web::test]
async fn a_request_that_needs_redis_while_it_is_unreachable_is_503_saying_so_not_busy() {
    let env = TestEnv::with_redis("redis://127.0.0.1:1/");
    let server = TestServer::start(env.config(json!({})), Role::Api).await;
    let answer =
        server.client.post(server.url("/api/ws-ticket")).bearer_auth(common::token("alice")).send().await.unwrap();
    assert_eq!(answer.status(), 503);
    let body: Value = answer.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("Redis cannot be reached"), "{body}");
    assert!(!message.contains("busy"), "{body}");
    server.shutdown().await;
}

/// How many PINGs the Redis server has answered.
fn pings(url: &str) -> u64 {
    let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
    let stats: String = redis::cmd("INFO").arg("commandstats").query(&mut conn).unwrap();
    stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_ping:calls="))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

/// A pooled connection that answered within the last second is handed out without a
/// PING (bb8 would otherwise test each checkout: two round trips per command), and one
/// whose server went away is thrown away, not handed out again: after a restart of
/// Redis only the commands already on those connections fail.
#[actix_web::test]
async fn pooled_commands_take_one_round_trip_and_a_redis_restart_costs_only_the_broken_connections() {
    let mut redis_server = OwnRedis::start();
    let env = TestEnv::with_redis(&redis_server.url);
    let config = env.config(json!({ "redis": { "pool_size": 4 } }));
    let queue = Queue::new(&config.redis, &config.document_queue).unwrap();
    for _ in 0..200 {
        queue.counts().await.unwrap();
    }
    assert!(pings(&redis_server.url) <= 4, "{} PINGs for 200 commands", pings(&redis_server.url));

    redis_server.restart();
    let mut failed = 0;
    for _ in 0..20 {
        if queue.counts().await.is_err() {
            failed += 1;
        }
    }
    assert!(failed <= 4, "{failed} of 20 commands failed after the restart");
    queue.counts().await.expect("commands work again on new connections");
}
