//! Each signed-in user's request pace (`server.requests_per_sec_per_user`, burst
//! `server.request_burst_per_user`): past it a request gets 429 with Retry-After and
//! the JSON error body, costs nothing (an upload stores no file), and other users are
//! served as before. The pace refills with time. A snapshot, over HTTP or asked for on
//! the WebSocket, counts as `SNAPSHOT_TURNS` (10) requests.

mod common;

use std::time::Duration;

use common::ws::WsClient;
use common::{token, TestEnv, TestServer};
use docqueue::app::Role;
use serde_json::{json, Value};

async fn list(server: &TestServer, user_token: &str) -> (u16, Option<String>, Value) {
    let response = server.client.get(server.url("/api/documents")).bearer_auth(user_token).send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    (status, retry_after, response.json().await.unwrap_or(Value::Null))
}

/// Sends plain requests until one is refused; returns how many passed, and the refusal.
async fn until_refused(server: &TestServer, user_token: &str) -> (usize, Option<String>, Value) {
    for passed in 0..100 {
        let (status, retry_after, body) = list(server, user_token).await;
        if status != 200 {
            assert_eq!(status, 429, "{body}");
            return (passed, retry_after, body);
        }
    }
    panic!("100 requests passed a pace of 1 a second with bursts of 10");
}

#[actix_web::test]
async fn a_user_past_the_pace_gets_429_with_retry_after_while_others_are_served() {
    let env = TestEnv::new();
    let config = env.config(json!({ "server": { "requests_per_sec_per_user": 1, "request_burst_per_user": 10 } }));
    let server = TestServer::start(config, Role::Api).await;
    let (alice, bob) = (token("alice"), token("bob"));
    let started = std::time::Instant::now();
    let (passed, retry_after, body) = until_refused(&server, &alice).await;
    // The burst, plus what the pace refilled meanwhile (one a second).
    let refilled = started.elapsed().as_secs() as usize + 1;
    assert!((10..=10 + refilled).contains(&passed), "{passed} passed in {:?}", started.elapsed());
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("1 requests a second")), "{body}");
    let retry_after: u64 = retry_after.expect("Retry-After is sent").parse().expect("Retry-After in seconds");
    assert!(retry_after >= 1);

    let (status, _, body) = list(&server, &bob).await;
    assert_eq!(status, 200, "another user is not held back: {body}");

    // One turn a second: after Retry-After, alice has one again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let (status, _, body) = list(&server, &alice).await;
    assert_eq!(status, 200, "the pace refills: {body}");
    server.shutdown().await;
}

#[actix_web::test]
async fn an_upload_past_the_pace_stores_nothing() {
    let env = TestEnv::new();
    let config = env.config(json!({ "server": { "requests_per_sec_per_user": 1, "request_burst_per_user": 10 } }));
    let server = TestServer::start(config, Role::Api).await;
    let alice = token("alice");
    until_refused(&server, &alice).await;
    let response = server.upload(&alice, &[("notes.md", b"# Notes\n\nPaced.".to_vec())], None).await;
    assert_eq!(response.status().as_u16(), 429);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
    assert!(env.stored_files().is_empty(), "a refused upload leaves no file: {:?}", env.stored_files());

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _, body) = list(&server, &alice).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["documents"].as_array().map(Vec::len), Some(0), "no document was made: {body}");
    server.shutdown().await;
}

#[actix_web::test]
async fn a_snapshot_counts_as_ten_requests_over_http_and_on_the_websocket() {
    let env = TestEnv::new();
    let config = env.config(json!({ "server": { "requests_per_sec_per_user": 1, "request_burst_per_user": 36 } }));
    let server = TestServer::start(config, Role::Api).await;
    let alice = token("alice");
    // A socket opened with a token starts with a snapshot: 10 turns, 26 left.
    let mut socket = WsClient::connect(&server.url(""), &alice).await;
    assert_eq!(socket.snapshot().await["type"], "snapshot");
    for n in 1..=2 {
        let (status, body) = server.get_json(&alice, "/api/documents/processing-status").await;
        assert_eq!(status, 200, "snapshot {n}: {body}");
    }
    // 6 left (and about one a second more): not enough for a third snapshot, which
    // takes only its request's turn.
    let (status, body) = server.get_json(&alice, "/api/documents/processing-status").await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("snapshot")), "{body}");
    // Nor for a second socket's snapshot: 429 before the upgrade.
    let url = format!("{}?token={alice}", server.url("/ws").replacen("http", "ws", 1));
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 429),
        other => panic!("expected 429 before the upgrade, got {:?}", other.map(|(_, response)| response.status())),
    }
    // Asked-for snapshots on the open socket take turns too: a subscribe, and a resume
    // from a seq the server never had (it cannot replay, so it would send a snapshot).
    for asked in [json!({ "type": "subscribe" }), json!({ "type": "resume", "since": 9_007_199_254_740_000u64 })] {
        socket.send_json(asked.clone()).await;
        let refused = socket.next_json(Duration::from_secs(5)).await.expect("an answer");
        let code = (refused["type"].as_str(), refused["code"].as_str());
        assert_eq!(code, (Some("error"), Some("snapshot_rate_limited")), "{asked}: {refused}");
    }
    socket.send_json(json!({ "type": "ping" })).await;
    let pong = socket.next_json(Duration::from_secs(5)).await.expect("the socket stays open");
    assert_eq!(pong["type"], "pong", "{pong}");
    server.shutdown().await;
}
