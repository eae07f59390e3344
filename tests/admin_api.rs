//! The admin API: access control, status, search, the story of a job, retry, cancel,
//! clean, pause and resume.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::processors::ScriptedProcessor;
use common::{admin_token, token, TestEnv, TestServer};
use docqueue::app::Role;
use docqueue::job_state::JobState;
use serde_json::{json, Value};

async fn admin(server: &TestServer, method: reqwest::Method, path: &str) -> (u16, Value) {
    let response =
        server.client.request(method, server.url(path)).bearer_auth(admin_token("ops")).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[actix_web::test]
async fn admin_routes_need_a_token_and_the_admin_role() {
    let env = TestEnv::new();
    let server = TestServer::start_with(env.config(json!({})), Role::Api, Arc::new(ScriptedProcessor::new())).await;
    let routes = [
        (reqwest::Method::GET, "/api/admin/queue/status"),
        (reqwest::Method::GET, "/api/admin/queue/jobs"),
        (reqwest::Method::GET, "/api/admin/queue/jobs/01JXXXXXXXXXXXXXXXXXXXXXXX"),
        (reqwest::Method::POST, "/api/admin/queue/retry/01JXXXXXXXXXXXXXXXXXXXXXXX"),
        (reqwest::Method::POST, "/api/admin/queue/retry-failed"),
        (reqwest::Method::DELETE, "/api/admin/queue/cancel/01JXXXXXXXXXXXXXXXXXXXXXXX"),
        (reqwest::Method::DELETE, "/api/admin/queue/clean?state=completed"),
        (reqwest::Method::POST, "/api/admin/queue/pause"),
        (reqwest::Method::POST, "/api/admin/queue/resume"),
    ];
    for (method, path) in routes {
        let anonymous = server.client.request(method.clone(), server.url(path)).send().await.unwrap();
        assert_eq!(anonymous.status(), 401, "{method} {path}");
        let user =
            server.client.request(method.clone(), server.url(path)).bearer_auth(token("alice")).send().await.unwrap();
        assert_eq!(user.status(), 403, "{method} {path}");
        let body: Value = user.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
    }
    server.shutdown().await;
}

#[actix_web::test]
async fn status_reports_counts_workers_throughput_and_redis() {
    let env = TestEnv::new();
    let config = env.config(json!({ "document_queue": { "concurrency": 2 } }));
    let server = TestServer::start_with(config, Role::All, Arc::new(ScriptedProcessor::new())).await;
    let alice = token("alice");
    for i in 0..3 {
        let doc = server.upload_one(&alice, &format!("s{i}.txt"), b"x".to_vec()).await;
        server.wait_for_status(&alice, doc["id"].as_str().unwrap(), "completed").await;
    }
    let (status, body) = admin(&server, reqwest::Method::GET, "/api/admin/queue/status").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["counts"]["completed"], 3);
    assert_eq!(body["paused"], false);
    assert_eq!(body["workers"].as_array().unwrap().len(), 2, "{body}");
    assert!(body["workers"][0]["last_heartbeat_ms"].as_i64().unwrap() > 0);
    assert!(body["throughput"]["last_15m"].as_f64().unwrap() > 0.0);
    let per_minute = body["throughput"]["per_minute"].as_array().unwrap();
    assert_eq!(per_minute.len(), 30);
    let counted: u64 = per_minute.iter().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(counted, 3, "each completion is counted once in its minute: {per_minute:?}");
    assert_eq!(body["processing_time"]["sample"], 3);
    assert!(body["processing_time"]["p95_ms"].is_i64());
    assert!(body["redis_used_memory_bytes"].as_u64().unwrap() > 0);
    assert!(body["redis_maxmemory_bytes"].is_u64() && body["redis_evicted_keys"].is_u64(), "{body}");
    assert_eq!(body["redis_prefix"], env.redis_prefix.as_str());
    assert_eq!(body["oldest_waiting"], Value::Null, "nothing waits");
    server.shutdown().await;
}

/// DESIGN.md: timestamps in JSON bodies are RFC 3339. Each one here is, and names the
/// same instant as its `_ms` sibling where there is one.
#[actix_web::test]
async fn the_admin_apis_timestamps_are_rfc_3339() {
    let env = TestEnv::new();
    let server = TestServer::start_with(env.config(json!({})), Role::All, Arc::new(ScriptedProcessor::new())).await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "times.txt", b"x".to_vec()).await;
    server.wait_for_status(&alice, doc["id"].as_str().unwrap(), "completed").await;
    let rfc_3339 = |value: &Value, what: &str| -> i64 {
        let text = value.as_str().unwrap_or_else(|| panic!("{what} is a string: {value}"));
        chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{what} {text}: {e}")).timestamp_millis()
    };

    let (_, jobs) = admin(&server, reqwest::Method::GET, "/api/admin/queue/jobs?state=completed").await;
    let job = &jobs["jobs"][0];
    for field in ["enqueued_at", "started_at", "finished_at"] {
        assert_eq!(rfc_3339(&job[field], field), job[format!("{field}_ms")].as_i64().unwrap(), "{job}");
    }
    let (_, story) =
        admin(&server, reqwest::Method::GET, &format!("/api/admin/queue/jobs/{}", job["job_id"].as_str().unwrap()))
            .await;
    let attempt = &story["attempts"][0];
    rfc_3339(&attempt["started_at"], "an attempt's started_at");
    rfc_3339(&attempt["finished_at"], "an attempt's finished_at");
    let (_, status) = admin(&server, reqwest::Method::GET, "/api/admin/queue/status").await;
    let worker = &status["workers"][0];
    assert_eq!(rfc_3339(&worker["last_heartbeat"], "last_heartbeat"), worker["last_heartbeat_ms"].as_i64().unwrap());
    assert_eq!(rfc_3339(&worker["started_at"], "started_at"), worker["started_at_ms"].as_i64().unwrap());
    server.shutdown().await;
}

#[actix_web::test]
async fn retry_sends_a_failed_job_back_and_it_completes() {
    let env = TestEnv::new();
    let server = TestServer::start_with(env.config(json!({})), Role::All, Arc::new(ScriptedProcessor::new())).await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "broken-once.txt", b"x".to_vec()).await;
    let id = doc["id"].as_str().unwrap();
    let old_job = doc["job_id"].as_str().unwrap();
    server.wait_for_status(&alice, id, "failed").await;

    let (status, failed) = admin(&server, reqwest::Method::GET, "/api/admin/queue/jobs?state=failed").await;
    assert_eq!(status, 200);
    assert_eq!(failed["jobs"][0]["job_id"], old_job);
    assert_eq!(failed["jobs"][0]["error"], "the parser rejected the file (simulated)");

    let (status, retried) = admin(&server, reqwest::Method::POST, &format!("/api/admin/queue/retry/{old_job}")).await;
    assert_eq!(status, 200, "{retried}");
    let new_job = retried["document"]["job_id"].as_str().unwrap().to_string();
    assert_ne!(new_job, old_job);
    let done = server.wait_for_status(&alice, id, "completed").await;
    assert_eq!(done["job_id"], new_job.as_str());

    let (status, story) = admin(&server, reqwest::Method::GET, &format!("/api/admin/queue/jobs/{new_job}")).await;
    assert_eq!(status, 200);
    let attempts = story["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{story:#}");
    assert_eq!(attempts[0]["outcome"], "failed");
    assert_eq!(attempts[0]["error"], "the parser rejected the file (simulated)");
    assert_eq!(attempts[1]["outcome"], "completed");
    assert!(attempts.iter().all(|a| a["worker_id"].as_str().is_some_and(|w| !w.is_empty())));
    assert_eq!(story["document"]["content_type"], "text/plain");

    let (status, _) = admin(&server, reqwest::Method::POST, &format!("/api/admin/queue/retry/{new_job}")).await;
    assert_eq!(status, 200, "a completed job may be processed again");
    server
        .wait_for(&alice, id, Duration::from_secs(30), |d| {
            d["queue_status"] == "completed" && d["job_id"] != new_job.as_str()
        })
        .await;
    server.shutdown().await;
}

#[actix_web::test]
async fn retry_all_failed_and_cancel_by_job_id() {
    let env = TestEnv::new();
    let server = TestServer::start_with(env.config(json!({})), Role::All, Arc::new(ScriptedProcessor::new())).await;
    let alice = token("alice");
    let mut ids = Vec::new();
    for i in 0..2 {
        let doc = server.upload_one(&alice, &format!("broken-{i}.txt"), b"x".to_vec()).await;
        server.wait_for_status(&alice, doc["id"].as_str().unwrap(), "failed").await;
        ids.push(doc["id"].as_str().unwrap().to_string());
    }
    let (status, body) = admin(&server, reqwest::Method::POST, "/api/admin/queue/retry-failed").await;
    assert_eq!((status, body["retried"].as_u64()), (200, Some(2)));
    for id in &ids {
        server.wait_for_status(&alice, id, "completed").await;
    }
    let slow = server.upload_one(&alice, "slow.txt", b"x".to_vec()).await;
    server.wait_for_status(&alice, slow["id"].as_str().unwrap(), "processing").await;
    let (status, body) = admin(
        &server,
        reqwest::Method::DELETE,
        &format!("/api/admin/queue/cancel/{}", slow["job_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    server.wait_for_status(&alice, slow["id"].as_str().unwrap(), "cancelled").await;
    server.shutdown().await;
}

#[actix_web::test]
async fn clean_removes_exactly_the_finished_jobs_past_the_age() {
    let env = TestEnv::new();
    let server = TestServer::start_with(env.config(json!({})), Role::All, Arc::new(ScriptedProcessor::new())).await;
    let alice = token("alice");
    let mut old = Vec::new();
    for i in 0..3 {
        let doc = server.upload_one(&alice, &format!("old-{i}.txt"), b"x".to_vec()).await;
        server.wait_for_status(&alice, doc["id"].as_str().unwrap(), "completed").await;
        old.push(doc["job_id"].as_str().unwrap().to_string());
    }
    let mut recent = Vec::new();
    for i in 0..2 {
        let doc = server.upload_one(&alice, &format!("new-{i}.txt"), b"x".to_vec()).await;
        server.wait_for_status(&alice, doc["id"].as_str().unwrap(), "completed").await;
        recent.push(doc["job_id"].as_str().unwrap().to_string());
    }
    old.sort();
    recent.sort();
    let finished_at = |jobs: &Value, ids: &[String]| -> Vec<i64> {
        let jobs = jobs["jobs"].as_array().unwrap().iter();
        jobs.filter(|j| ids.iter().any(|id| j["job_id"] == id.as_str()))
            .map(|j| j["finished_at_ms"].as_i64().unwrap())
            .collect()
    };
    let (_, all) = admin(&server, reqwest::Method::GET, "/api/admin/queue/jobs?state=completed").await;
    let last_old = finished_at(&all, &old).into_iter().max().unwrap();
    assert!(finished_at(&all, &recent).into_iter().all(|at| at > last_old), "{all}");
    // Cleaned as of 3 s after the last old job finished plus a millisecond: the old
    // jobs are past 3 s, the recent ones not yet.
    let as_of = last_old + 1 + 3000;
    let removed = server.app().queue.clean_at(JobState::Completed, Duration::from_secs(3), u64::MAX, as_of);
    let mut removed = removed.await.unwrap();
    removed.sort();
    assert_eq!(removed, old);
    let (_, left) = admin(&server, reqwest::Method::GET, "/api/admin/queue/jobs?state=completed").await;
    let mut kept: Vec<String> =
        left["jobs"].as_array().unwrap().iter().map(|j| j["job_id"].as_str().unwrap().to_string()).collect();
    kept.sort();
    assert_eq!(kept, recent);
    // Over HTTP, `older_than=0` takes every finished job: here the recent ones.
    let (status, body) =
        admin(&server, reqwest::Method::DELETE, "/api/admin/queue/clean?state=completed&older_than=0").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["removed"], 2);
    let mut removed: Vec<String> =
        body["job_ids"].as_array().unwrap().iter().map(|j| j.as_str().unwrap().to_string()).collect();
    removed.sort();
    assert_eq!(removed, recent);
    let (status, _) = admin(&server, reqwest::Method::DELETE, "/api/admin/queue/clean?state=processing").await;
    assert_eq!(status, 400);
    // The documents themselves are untouched.
    let (_, docs) = server.get_json(&alice, "/api/documents?status=completed").await;
    assert_eq!(docs["documents"].as_array().unwrap().len(), 5);
    server.shutdown().await;
}

#[actix_web::test]
async fn an_age_past_100_years_is_refused_and_a_job_id_no_row_can_hold_is_not_found() {
    let env = TestEnv::new();
    let server = TestServer::start_with(env.config(json!({})), Role::All, Arc::new(ScriptedProcessor::new())).await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "kept.txt", b"kept".to_vec()).await;
    server.wait_for_status(&alice, doc["id"].as_str().unwrap(), "completed").await;
    // 2^64 / 1000 seconds, 2^64 / 86,400 days: ages that used to wrap into "now" and
    // remove every finished job.
    for age in ["18446744073709551", "213503982334601d", "36501d"] {
        let path = format!("/api/admin/queue/clean?state=completed&older_than={age}");
        let (status, body) = admin(&server, reqwest::Method::DELETE, &path).await;
        assert_eq!(status, 400, "{age}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{body}");
    }
    let (status, body) =
        admin(&server, reqwest::Method::DELETE, "/api/admin/queue/clean?state=completed&older_than=36500d").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["removed"], 0, "nothing finished 100 years ago: {body}");

    for path in ["/api/admin/queue/jobs/%00", "/api/admin/queue/jobs/a%00b"] {
        let (status, body) = admin(&server, reqwest::Method::GET, path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "not_found", "{body}");
    }
    let (status, body) = admin(&server, reqwest::Method::POST, "/api/admin/queue/retry/%00").await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    server.shutdown().await;
}

#[actix_web::test]
async fn search_finds_a_job_by_part_of_its_filename_its_ids_or_its_user() {
    let env = TestEnv::new();
    let server = TestServer::start_with(env.config(json!({})), Role::Api, Arc::new(ScriptedProcessor::new())).await;
    let report = server
        .upload_one(&token("alice"), "Quarterly-Report-2026.pdf", common::fixture("debian-reference-excerpt.pdf"))
        .await;
    server.upload_one(&token("bob"), "holiday-notes.md", b"# Notes\n".to_vec()).await;
    let find = |query: String| {
        let server = &server;
        async move {
            let (status, body) = admin(server, reqwest::Method::GET, &format!("/api/admin/queue/jobs?{query}")).await;
            assert_eq!(status, 200, "{body}");
            body["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["filename"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(find("q=report".into()).await, vec!["Quarterly-Report-2026.pdf"]);
    assert_eq!(find(format!("q={}", report["job_id"].as_str().unwrap())).await, vec!["Quarterly-Report-2026.pdf"]);
    assert_eq!(find(format!("q={}", report["id"].as_str().unwrap())).await, vec!["Quarterly-Report-2026.pdf"]);
    assert_eq!(find("user=bob".into()).await, vec!["holiday-notes.md"]);
    assert_eq!(find("state=queued&q=notes".into()).await, vec!["holiday-notes.md"]);
    assert!(find("q=nothing-like-this".into()).await.is_empty());
    let (_, paged) = admin(&server, reqwest::Method::GET, "/api/admin/queue/jobs?limit=1").await;
    assert_eq!(paged["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(paged["next_cursor"], 1);
    server.shutdown().await;
}
