//! `/metrics` is valid Prometheus text and its counters move with the work; the
//! figures docker/prometheus/alerts.yml needs are there and right.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::processors::ScriptedProcessor;
use common::{scrape, text_job, token, value, OwnRedis, TestEnv, TestServer};
use docqueue::app::Role;
use docqueue::processing::step_times::Step;
use docqueue::queue::{Queue, RetryDecision};
use redis::Commands;
use serde_json::json;

#[actix_web::test]
async fn metrics_parse_and_move_when_jobs_complete_and_fail() {
    let env = TestEnv::new();
    let server = TestServer::start_with(env.config(json!({})), Role::All, Arc::new(ScriptedProcessor::new())).await;
    let before = scrape(&server).await;
    assert_eq!(value(&before, "docqueue_jobs_total", Some(("outcome", "completed"))), 0.0);
    assert!(value(&before, "docqueue_workers_active", None) >= 1.0);

    let alice = token("alice");
    let ok = server.upload_one(&alice, "fine.txt", b"x".to_vec()).await;
    let bad = server.upload_one(&alice, "permanent.txt", b"x".to_vec()).await;
    server.wait_for_status(&alice, ok["id"].as_str().unwrap(), "completed").await;
    server.wait_for_status(&alice, bad["id"].as_str().unwrap(), "failed").await;

    let after = scrape(&server).await;
    assert_eq!(value(&after, "docqueue_jobs_total", Some(("outcome", "completed"))), 1.0);
    assert_eq!(value(&after, "docqueue_jobs_total", Some(("outcome", "failed"))), 1.0);
    assert_eq!(value(&after, "docqueue_queue_jobs", Some(("state", "completed"))), 1.0);
    assert_eq!(value(&after, "docqueue_processing_duration_seconds", Some(("content_type", "text/plain"))), 1.0);
    assert_eq!(value(&after, "docqueue_enqueue_to_start_seconds", None), 2.0);
    assert!(value(&after, "docqueue_http_requests_total", Some(("route", "/api/documents/upload"))) >= 2.0);
    assert_eq!(value(&after, "docqueue_worker_claim_attempts_total", Some(("outcome", "claimed"))), 2.0);
    server.shutdown().await;
}

/// Each process sums up its histogram and ETA observations and adds them to Redis a
/// moment later, so another process (here a second queue handle, which keeps its own
/// sums) sees them without the first one being asked.
#[actix_web::test]
async fn another_process_sees_a_completion_in_the_shared_histograms_and_eta_within_a_second() {
    let env = TestEnv::new();
    let config = env.config(json!({}));
    let worker_side = Queue::new(&config.redis, &config.document_queue).unwrap();
    let reader_side = Queue::new(&config.redis, &config.document_queue).unwrap();
    let mut conn = worker_side.dedicated_connection().await.unwrap();
    let mut big = text_job("big", "alice");
    big.size_bytes = 10 * 1024;
    worker_side.enqueue(&[big]).await.unwrap();
    let claimed = worker_side.claim(&mut conn, "test-worker").await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(worker_side.end_job(&claimed, docqueue::job_state::JobState::Completed, "").await.unwrap());

    let histograms = common::eventually(Duration::from_secs(1), "the other process's histograms", || async {
        let histograms = reader_side.histograms().await.unwrap();
        let count = |name: &str| -> f64 {
            histograms
                .iter()
                .filter(|(n, _)| n == name)
                .flat_map(|(_, f)| f.iter())
                .filter(|(k, _)| *k != "sum")
                .map(|(_, v)| v)
                .sum()
        };
        (count("duration:text/plain") == 1.0 && count("wait") == 1.0).then_some(histograms)
    })
    .await;
    let duration = &histograms.iter().find(|(n, _)| n == "duration:text/plain").unwrap().1;
    assert!(duration["sum"] >= 0.03, "the duration runs from claim to end: {duration:?}");

    // The ETA's speed for text: at least 30 ms over 10 KiB.
    let mut redis = env.redis();
    let rate: f64 = redis.hget(format!("{}eta", env.redis_prefix), "text/plain").unwrap();
    assert!(rate >= 3.0, "{rate} ms per KiB");
}

async fn oldest(queue: &Queue) -> Option<String> {
    queue.oldest_waiting().await.unwrap().map(|o| o.job_id)
}

/// The age /metrics reports is that of the job `oldest_waiting` names; every script
/// that puts a job into the queue or takes one out keeps that right. An API-only server
/// has no workers or maintenance, so only the test moves jobs.
#[actix_web::test]
async fn the_oldest_waiting_job_is_kept_through_every_way_in_and_out_of_the_queue() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::Api).await;
    let queue = &server.app().queue;
    let mut conn = queue.dedicated_connection().await.unwrap();
    let mut redis = env.redis();
    let key = |name: &str| format!("{}{name}", env.redis_prefix);
    assert_eq!(oldest(queue).await, None);

    queue.enqueue(&[text_job("a", "alice")]).await.unwrap();
    queue.enqueue(&[text_job("b", "bob")]).await.unwrap();
    assert_eq!(oldest(queue).await.as_deref(), Some("a"));
    queue.cancel("a").await.unwrap();
    assert_eq!(oldest(queue).await.as_deref(), Some("b"), "cancel takes a job out");

    let b = queue.claim(&mut conn, "test-worker").await.unwrap().unwrap();
    assert_eq!(oldest(queue).await, None, "a claim takes it out");
    assert!(queue.release(&b).await.unwrap());
    assert_eq!(oldest(queue).await.as_deref(), Some("b"), "a job handed back waits again");

    // A lease that ran out: the rescue puts the job back.
    let b = queue.claim(&mut conn, "test-worker").await.unwrap().unwrap();
    let _: () = redis.zadd(key("active"), &b.job_id, 0).unwrap();
    assert_eq!(queue.rescue_stalled().await.unwrap().len(), 1);
    assert_eq!(oldest(queue).await.as_deref(), Some("b"), "a rescued job waits again");

    // A retry, once its back-off is over.
    let b = queue.claim(&mut conn, "test-worker").await.unwrap().unwrap();
    assert!(matches!(queue.retry_or_fail(&b, "transient").await.unwrap(), RetryDecision::Retrying { .. }));
    assert_eq!(oldest(queue).await, None, "a job in back-off is not waiting");
    let _: () = redis.zadd(key("delayed"), &b.job_id, 0).unwrap();
    assert_eq!(queue.promote_delayed().await.unwrap(), 1);
    assert_eq!(oldest(queue).await.as_deref(), Some("b"), "a due retry waits again");

    // A waiting job whose record is gone is popped by the next claim, and forgotten. b and
    // c hold the same fair slot (each user's first waiting job), and ties pop in id order.
    queue.enqueue(&[text_job("c", "carol")]).await.unwrap();
    let _: () = redis.del(key("job:b")).unwrap();
    let c = queue.claim(&mut conn, "test-worker").await.unwrap().unwrap();
    assert_eq!(c.job_id, "c");
    assert_eq!(oldest(queue).await, None);
    server.shutdown().await;
}

#[actix_web::test]
async fn metrics_report_the_longest_wait_redis_memory_evictions_and_jobs_the_reconciler_found() {
    // A Redis of the test's own: it is flushed, given a maxmemory and made to evict.
    let own = OwnRedis::start();
    let env = TestEnv::with_redis(&own.url);
    let config = env.config(json!({ "document_queue": { "reconcile_interval_secs": 1 } }));
    let server = TestServer::start_with(config, Role::All, Arc::new(ScriptedProcessor::new())).await;
    let mut redis = env.redis();
    let before = scrape(&server).await;
    assert_eq!(value(&before, "docqueue_queue_oldest_waiting_seconds", None), 0.0);
    assert!(value(&before, "docqueue_redis_used_memory_bytes", None) > 0.0);
    assert_eq!(value(&before, "docqueue_redis_maxmemory_bytes", None), 0.0, "no limit");
    assert_eq!(value(&before, "docqueue_redis_evicted_keys_total", None), 0.0);
    assert_eq!(value(&before, "docqueue_reconciler_requeued_total", None), 0.0);

    let admin = common::admin_token("ops");
    let paused = server.client.post(server.url("/api/admin/queue/pause")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(paused.status(), 200);
    let alice = token("alice");
    let doc = server.upload_one(&alice, "waits.txt", b"w".to_vec()).await;
    common::eventually(Duration::from_secs(10), "the wait to show", || async {
        (value(&scrape(&server).await, "docqueue_queue_oldest_waiting_seconds", None) > 0.0).then_some(())
    })
    .await;

    // Redis loses everything, the pause included: the reconciler enqueues the document again.
    let _: () = redis::cmd("FLUSHALL").query(&mut redis).unwrap();
    server.wait_for_a_later_maintenance_pass("reconcile").await;
    server.wait_for_status(&alice, doc["id"].as_str().unwrap(), "completed").await;
    let after = scrape(&server).await;
    assert!(value(&after, "docqueue_reconciler_requeued_total", None) >= 1.0);
    assert_eq!(value(&after, "docqueue_queue_oldest_waiting_seconds", None), 0.0, "nothing waits");

    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg("1gb").query(&mut redis).unwrap();
    assert_eq!(value(&scrape(&server).await, "docqueue_redis_maxmemory_bytes", None), 1073741824.0);
    // Little room and a policy that evicts: filling it evicts keys.
    let used = value(&after, "docqueue_redis_used_memory_bytes", None) as u64;
    let _: () =
        redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("allkeys-random").query(&mut redis).unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(used + 1_000_000).query(&mut redis).unwrap();
    for i in 0..400 {
        let _: () = redis.set(format!("filler:{i}"), vec![b'x'; 10_000]).unwrap();
    }
    assert!(value(&scrape(&server).await, "docqueue_redis_evicted_keys_total", None) > 0.0);
    server.shutdown().await;
}

#[actix_web::test]
async fn job_step_times_count_each_step_a_real_document_went_through() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::All).await;
    let alice = token("alice");
    let text = b"Step times show where a document's processing time goes.\n".repeat(20);
    let first = server.upload_one(&alice, "steps.txt", text.clone()).await;
    server.wait_for_status(&alice, first["id"].as_str().unwrap(), "completed").await;
    // The same content again: its chunks are copied, so it is never read or stored anew.
    let copy = server.upload_one(&alice, "steps-again.txt", text).await;
    server.wait_for_status(&alice, copy["id"].as_str().unwrap(), "completed").await;

    let scrape = scrape(&server).await;
    let count = |step: Step| value(&scrape, "docqueue_job_step_seconds", Some(("step", step.name())));
    for (step, expected) in [
        (Step::StartRow, 2.0),
        (Step::DuplicateCheck, 2.0),
        (Step::Extract, 1.0),
        (Step::ChunkEmbed, 1.0),
        (Step::Store, 1.0),
        (Step::End, 2.0),
    ] {
        assert_eq!(count(step), expected, "{}", step.name());
    }
    assert_eq!(Step::ALL.len(), 6, "a new step needs a line above");
    server.shutdown().await;
}

/// Any token is an HTTP method: requests with invented ones are counted under
/// method="other", not each under a series of its own that would be kept for ever.
#[actix_web::test]
async fn invented_http_methods_add_no_series_of_their_own() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::Api).await;
    for i in 0..20 {
        let method = reqwest::Method::from_bytes(format!("INVENTED{i}").as_bytes()).unwrap();
        let response = server.client.request(method, server.url("/healthz")).send().await.unwrap();
        assert_eq!(response.status(), 405);
    }
    let text = server.client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!text.contains("INVENTED"), "an invented method became a label");
    let others = scrape(&server).await;
    let counted: f64 = others
        .samples
        .iter()
        .filter(|s| s.metric == "docqueue_http_requests_total" && s.labels.get("method") == Some("other"))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) => v,
            _ => 0.0,
        })
        .sum();
    assert_eq!(counted, 20.0);
    server.shutdown().await;
}
